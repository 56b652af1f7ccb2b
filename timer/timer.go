package timer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidPeriod is returned (wrapped) by [Repeat] when the period is not
// positive.
var ErrInvalidPeriod = errors.New("colugo/timer: period must be positive")

// Repeat calls fn(ctx) every period until ctx ends, then returns
// context.Cause(ctx) (ctx.Err() unless a cause was set).
//
// Repeat blocks for as long as it runs, and fn runs on the caller's
// goroutine, so calls never overlap; callers that want it in the background
// run it in a goroutine they own and wait for it. The first call happens one
// period after Repeat starts (not at once), the next ones on the boundaries
// start+k·period. A call that overruns skips the boundaries it covered, and
// the next call happens on the first boundary at or after its return: ticks
// are dropped, never queued, so a slow fn is never called back to back to
// catch up. fn should return promptly when ctx ends; Repeat cannot interrupt
// it. No call starts once ctx is done.
//
// If period <= 0, Repeat returns an error wrapping [ErrInvalidPeriod] at once
// without calling fn. Repeat is safe for concurrent use (each call is
// independent).
func Repeat(ctx context.Context, period time.Duration, fn func(context.Context)) error {
	if period <= 0 {
		return fmt.Errorf("%w: got %v", ErrInvalidPeriod, period)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	next := time.Now().Add(period)
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
		// The timer and ctx can both be ready; select picks at random, and
		// no call may start after ctx is done.
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		fn(ctx)
		now := time.Now()
		next = next.Add(period)
		if late := now.Sub(next); late > 0 {
			// Skip every boundary fn overran, rounding up to the first one
			// at or after now.
			next = next.Add((late + period - 1) / period * period)
		}
		// Since Go 1.23, Reset on a fired and drained timer is safe and no
		// stale value can be received afterwards.
		t.Reset(next.Sub(now))
	}
}

// After calls fn once, in its own goroutine, after at least d (at once if
// d <= 0), like [time.AfterFunc]; it does not block.
//
// The returned stop prevents the call if it has not started yet and reports
// whether it did so: true means fn will never run, false means fn has
// already run, is running, or was already stopped. stop does not wait for a
// running fn; a caller that needs to wait must have fn signal it (for example
// by closing a channel). stop is safe for concurrent use and may be called
// any number of times. fn must not be nil.
func After(d time.Duration, fn func()) (stop func() bool) {
	return time.AfterFunc(d, fn).Stop
}
