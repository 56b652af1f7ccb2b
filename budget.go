package colugo

import (
	"fmt"
	"sync/atomic"
)

// QueueBudget bounds the queues of several subscriptions together, in
// bytes, as WithQueueBytes bounds one: give it to each of them with
// [WithQueueBudget]. It is for a program that subscribes to many topics
// and must bound what they hold all together while its readers lag: a
// bridge forwarding every topic of a pattern, a recorder. Safe for
// concurrent use.
type QueueBudget struct {
	max  int64
	used atomic.Int64
}

// NewQueueBudget returns a budget of max bytes. A budget below 1 byte is
// refused by WithQueueBudget's subscriptions (ErrInvalidOption).
func NewQueueBudget(max int) *QueueBudget { return &QueueBudget{max: int64(max)} }

// Max returns the budget's bound, in bytes.
func (b *QueueBudget) Max() int { return int(b.max) }

// Used returns the bytes the budget's subscriptions queue now (counted as
// WithQueueBytes counts them), at most Max plus two values per
// subscription (see WithQueueBudget).
func (b *QueueBudget) Used() int { return int(b.used.Load()) }

// over reports whether size more bytes would take b past its bound; a nil
// b has none.
func (b *QueueBudget) over(size int) bool {
	return b != nil && b.used.Load()+int64(size) > b.max
}

// add counts delta bytes queued (negative: released); a nil b ignores it.
func (b *QueueBudget) add(delta int) {
	if b != nil && delta != 0 {
		b.used.Add(int64(delta))
	}
}

// WithQueueBudget makes the subscription's queue share b with the other
// subscriptions given it: a value waits in the queue only while both the
// subscription's own bound (WithQueueBytes) and b have room for it, and at
// either bound the drop policy applies to this subscription's own queue
// (DropOldest drops its oldest value, DropNewest the arriving one, Block
// waits for its reader). A subscription whose queue is empty still takes
// one value however full b is, so that no subscription is starved by the
// others; the value being handed to its reader counts too (until the
// channel takes it), so with DropOldest, which keeps the newest, each may
// go past b by two values, one with the other policies. Values on their
// way straight to a channel with room are not counted. No effect with
// WithQueueBytes(0). Default: none.
func WithQueueBudget(b *QueueBudget) SubscribeOption { return queueBudgetOption{b} }

type queueBudgetOption struct{ b *QueueBudget }

func (o queueBudgetOption) applySubscribe(c *subConfig) { c.budget, c.budgetSet = o.b, true }
func (o queueBudgetOption) String() string {
	if o.b == nil {
		return "WithQueueBudget(nil)"
	}
	return fmt.Sprintf("WithQueueBudget(NewQueueBudget(%d))", o.b.max)
}
