// Package testwait is the one polling helper of colugo's tests: it waits
// for a condition with a deadline, for tests that have no event to wait
// on. It polls every millisecond at first, backing off to every 10 ms.
package testwait

import (
	"testing"
	"time"
)

// Timeout is how long Until waits.
const Timeout = 10 * time.Second

// maxInterval bounds the back-off between two polls.
const maxInterval = 10 * time.Millisecond

// For polls cond until it holds or d passes, and reports whether it held;
// cond is called once more at the deadline.
func For(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := time.Millisecond
	for !cond() {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(interval, time.Until(deadline)+time.Microsecond)) // polling interval, not ordering
		interval = min(2*interval, maxInterval)
	}
	return true
}

// Until polls cond until it holds, failing tb (Fatal, from the test's
// goroutine only) if it does not within Timeout; what names the condition
// in the failure.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !For(Timeout, cond) {
		if what == "" {
			what = "the condition"
		}
		tb.Fatalf("timed out after %v waiting for %s", Timeout, what)
	}
}
