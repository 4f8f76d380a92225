package app

import "runtime/debug"

// DefaultGCPercent is the garbage collector's target when GOGC is not set.
// Requests allocate a lot and keep little (a few MB live): at Go's default
// of 100 the collector ran often enough to take a fifth of the process's
// CPU. At 400 it runs a quarter as often for a larger heap (csatbench's
// peak RSS, load generator included: 45 -> 60 MB at 100,000 surveys, 55 ->
// 84 MB at 1M); on 2 cores at 100,000 surveys the GraphQL page served 39 %
// more requests, the REST list 18 %, GraphQL analytics 27 %.
const DefaultGCPercent = 400

// TuneGC sets the collector's target to DefaultGCPercent unless GOGC sets
// one: the runtime has already applied an explicit GOGC (and GOMEMLIMIT,
// which caps the heap whatever the target). It returns the target in force.
func TuneGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		pct := debug.SetGCPercent(-1)
		debug.SetGCPercent(pct)
		return pct
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent
}
