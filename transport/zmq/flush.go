package zmq

import (
	"context"

	"github.com/colugo-go/colugo/transport"
)

var _ transport.Flusher = (*Transport)(nil)

// Flush waits until the send queue of every accepted connection (the
// subscribers' and the requesters') is empty: what was queued has been
// written to its socket, or the connection has gone. It returns ctx's
// error if ctx ends first. Connections this transport dialled carry only
// requests and subscriptions, which nothing waits to flush.
func (t *Transport) Flush(ctx context.Context) error {
	t.mu.Lock()
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		if err := c.drained(ctx); err != nil {
			return err
		}
	}
	return nil
}

// drained waits until c's queue is empty or c has gone.
func (c *conn) drained(ctx context.Context) error {
	for {
		c.wmu.Lock()
		if c.queued == 0 || c.dead {
			c.wmu.Unlock()
			return nil
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room // closed after each batch written (roomMadeLocked)
		c.wmu.Unlock()
		select {
		case <-room:
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
