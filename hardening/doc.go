// Package hardening holds the tests that attack the whole service from
// outside: fuzzing of every input over HTTP, request limits, secrets at
// rest, and the fault scenarios (`make faults`) that kill and cut real
// processes. It has no code of its own.
package hardening
