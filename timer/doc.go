// Package timer provides the scheduling helpers of colugo: [Repeat] calls a
// function periodically until its context ends, and [After] calls one once
// after a delay.
//
// Both follow the standard library's timers: a repeater skips ticks when the
// function is slow and never queues them (like [time.Ticker]), and a delayed
// call returns a stop function (like [time.AfterFunc]).
package timer
