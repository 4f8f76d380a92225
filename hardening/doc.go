// Package hardening holds the tests that attack the whole service from
// outside: fuzzing of every input over HTTP, request limits (bodies, slow
// headers), token guessing (timing and the per-IP limits), secrets at
// rest, and the fault scenarios (`make faults`) that kill, flush and cut
// real processes and count what survived. It has no code of its own.
package hardening
