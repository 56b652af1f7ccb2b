package zmq

import (
	"context"
	"time"

	"github.com/colugo-go/colugo/transport"
)

var _ transport.Flusher = (*Transport)(nil)

// Flush waits until the send queue of every accepted connection (the
// subscribers' and the requesters') is empty, and on Linux until the
// kernel's send queue is too (the peer has acknowledged or read every
// byte), or the connection has gone. It returns ctx's error if ctx ends
// first. Connections this transport dialled carry only requests and
// subscriptions, which nothing waits to flush.
//
// Why the kernel's queue: closing a socket whose peer has not yet taken
// everything can lose the tail (a TCP reset discards what is in flight),
// and Node.Shutdown closes right after Flush.
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

var _ transport.Syncer = (*Transport)(nil)

// Sync waits until every message queued before the call for a subscriber
// that asked for back-pressure (and is not demoted) has been written to
// its socket, or dropped with its connection, or ctx ends. Unlike Flush it
// waits neither for what is queued meanwhile nor for the kernel's send
// queue, so it returns under a steady flow too, nor for other subscribers,
// so a slow one holds up no one.
func (t *Transport) Sync(ctx context.Context) error {
	type mark struct {
		c      *conn
		target uint64
	}
	t.mu.Lock()
	marks := make([]mark, 0, len(t.conns))
	for c := range t.conns {
		if c.pp != nil && c.pp.bpN.Load() > 0 && !c.demoted.Load() {
			marks = append(marks, mark{c: c})
		}
	}
	t.mu.Unlock()
	for i := range marks {
		c := marks[i].c
		c.wmu.Lock()
		marks[i].target = c.enqueued
		c.wmu.Unlock()
	}
	for _, m := range marks {
		if err := m.c.writtenTo(ctx, m.target); err != nil {
			return err
		}
	}
	return nil
}

// writtenTo waits until c has written (or dropped) its first n messages,
// c has gone, or ctx ends.
func (c *conn) writtenTo(ctx context.Context, n uint64) error {
	_, err := c.waitQueue(ctx, func() bool { return c.written >= n })
	return err
}

// drained waits until c's queue, then its socket's, is empty or c has
// gone.
func (c *conn) drained(ctx context.Context) error {
	gone, err := c.waitQueue(ctx, func() bool { return c.queued == 0 })
	if gone || err != nil {
		return err
	}
	return c.socketDrained(ctx)
}

// waitQueue waits until done, called under wmu, holds, c has gone (gone
// is then true), or ctx ends.
func (c *conn) waitQueue(ctx context.Context, done func() bool) (gone bool, err error) {
	for {
		c.wmu.Lock()
		if c.dead {
			c.wmu.Unlock()
			return true, nil
		}
		if done() {
			c.wmu.Unlock()
			return false, nil
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room // closed after each batch written (roomMadeLocked)
		c.wmu.Unlock()
		select {
		case <-room:
		case <-c.done:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// socketDrained polls the kernel's send queue of c until it is empty (no
// event tells), c has gone, or ctx ends.
func (c *conn) socketDrained(ctx context.Context) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		n, ok := unsentBytes(c.nc)
		if !ok || n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
