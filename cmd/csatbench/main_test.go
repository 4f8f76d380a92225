package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csat/csat/secret"
	"github.com/csat/csat/testenv"
)

// TestBenchSmoke runs the whole benchmark tiny, so it keeps working; the
// numbers are not checked (speed targets are not timed tests), only that
// every scenario ran without errors and the wave was delivered.
func TestBenchSmoke(t *testing.T) {
	redisURL, _ := testenv.Redis(t, 8)
	u, err := url.Parse(testenv.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + secret.ID("csat_bench_smoke_")
	out := filepath.Join(t.TempDir(), "latest.json")
	var stdout bytes.Buffer
	args := []string{"-surveys", "2000", "-ref", "500", "-tenants", "3", "-duration", "2s", "-wave", "200", "-wave-spread", "2s",
		"-db", u.String(), "-redis", redisURL, "-out", out}
	if err := run(context.Background(), args, &stdout); err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results are not JSON: %v", err)
	}
	if rep.Surveys != 2000 || rep.LoadedRows != 3000 {
		t.Errorf("surveys %d, loaded %d; want 2000 and 3000", rep.Surveys, rep.LoadedRows)
	}
	got := map[string]result{}
	for _, s := range append(rep.Scenarios, append(rep.Floors, rep.Reference...)...) {
		got[s.Name] = s
		if strings.HasPrefix(s.Note, "skipped") {
			continue
		}
		if s.Requests == 0 || s.Errors > 0 || s.P95 <= 0 {
			t.Errorf("%s: %d requests, %d errors, p95 %.2f ms: %s", s.Name, s.Requests, s.Errors, s.P95, s.Note)
		}
	}
	for _, name := range []string{"floor_select", "floor_update", "intake", "one_click", "submit", "list", "list_deep_offset", "list_ref"} {
		if _, ok := got[name]; !ok {
			t.Errorf("scenario %s missing", name)
		}
	}
	if got["intake"].FloorRPS <= 0 || got["list"].Ratio <= 0 {
		t.Errorf("ratios not set: intake floor %.0f, list ratio %.3f", got["intake"].FloorRPS, got["list"].Ratio)
	}
	if rep.SendWave.Emails != 200 || rep.SendWave.Accepted != 200 {
		t.Errorf("send wave: %d of %d accepted", rep.SendWave.Accepted, rep.SendWave.Emails)
	}
	// asynq schedules by the second, so a send may start up to ~1 s early.
	if sp := rep.SendWaveSpread; sp.Emails != 200 || sp.Accepted != 200 || sp.SpreadS != 2 || sp.Seconds < 1 {
		t.Errorf("spread wave: %+v", sp)
	}
	if rep.RSSMB <= 0 || rep.Flatness["list"] <= 0 {
		t.Errorf("rss %.1f MB, flatness %v", rep.RSSMB, rep.Flatness)
	}
}
