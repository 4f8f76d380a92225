package app

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	if got := TuneGC(func(string) string { return "" }); got != DefaultGCPercent {
		t.Fatalf("GOGC unset: TuneGC = %d, want %d", got, DefaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GOGC unset: collector target %d, want %d", got, DefaultGCPercent)
	}

	// An explicit GOGC was applied by the runtime at start (here: 100, set
	// above); TuneGC leaves it.
	env := map[string]string{"GOGC": "100"}
	if got := TuneGC(func(k string) string { return env[k] }); got != 100 {
		t.Fatalf("GOGC=100: TuneGC = %d, want 100", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=100: collector target %d, want 100", got)
	}
}
