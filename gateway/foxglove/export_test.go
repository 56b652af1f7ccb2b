package foxglove

import "github.com/colugo-go/colugo"

// Internal bounds, for the tests that reach them.
const (
	MaxCallBytes     = maxCallBytes
	MaxClientSchemas = maxClientSchemas
)

// TopicBudget is the budget g's topic subscriptions share.
func (g *Gateway) TopicBudget() *colugo.QueueBudget { return g.budget }

// HoldFanOut stops every topic's fan-out to clients until release: each
// topic's goroutine waits for g.mu with the message it took, and its
// subscription queues what comes meanwhile, as when the fan-out lags.
// Nothing that takes g.mu (Stats, client ops) may be called until release.
func (g *Gateway) HoldFanOut() (release func()) {
	g.mu.Lock()
	return g.mu.Unlock
}
