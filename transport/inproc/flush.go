package inproc

import (
	"context"

	"github.com/colugo-go/colugo/transport"
)

var _ transport.Flusher = (*Transport)(nil)

// Flush waits until every subscriber's queue of this transport's
// publisher is empty (its messages handed to the subscriber's Handler) or
// the subscriber has gone. Replies are never queued. It returns ctx's
// error if ctx ends first.
func (t *Transport) Flush(ctx context.Context) error {
	t.subsMu.RLock()
	links := make([]*link, 0, len(t.subs))
	for l := range t.subs {
		links = append(links, l)
	}
	t.subsMu.RUnlock()
	for _, l := range links {
		if err := l.drained(ctx); err != nil {
			return err
		}
	}
	return nil
}

var _ transport.Syncer = (*Transport)(nil)

// Sync waits until every message queued before the call for a subscriber
// that asked for back-pressure on some topic (and is not demoted) has been
// handed to it, or its link is cut, or ctx ends; what is queued meanwhile,
// and other subscribers, are not waited for.
func (t *Transport) Sync(ctx context.Context) error {
	t.subsMu.RLock()
	links := make([]*link, 0, len(t.subs))
	for l := range t.subs {
		if l.reliable() {
			links = append(links, l)
		}
	}
	t.subsMu.RUnlock()
	targets := make([]uint64, len(links))
	for i, l := range links {
		l.qmu.Lock()
		targets[i] = l.pushed
		l.qmu.Unlock()
	}
	for i, l := range links {
		if err := l.passedTo(ctx, targets[i]); err != nil {
			return err
		}
	}
	return nil
}

// reliable reports whether l asked for back-pressure on some topic and is
// not demoted.
func (l *link) reliable() bool {
	l.mu.Lock()
	bp := false
	for _, b := range l.topics {
		bp = bp || b
	}
	l.mu.Unlock()
	return bp && l.undemoted()
}

// passedTo waits until l has handed over its first n messages, l is cut,
// or ctx ends.
func (l *link) passedTo(ctx context.Context, n uint64) error {
	return l.waitFor(ctx, func() bool { return l.passed >= n })
}

// drained waits until l's queue is empty or l is cut.
func (l *link) drained(ctx context.Context) error {
	return l.waitFor(ctx, func() bool { return l.head == len(l.q) && !l.taking })
}

// waitFor waits until done, called under qmu, holds, l is cut, or ctx
// ends.
func (l *link) waitFor(ctx context.Context, done func() bool) error {
	for {
		l.qmu.Lock()
		if done() {
			l.qmu.Unlock()
			return nil
		}
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room // closed when the deliverer takes or hands over a message
		l.qmu.Unlock()
		select {
		case <-room:
		case <-l.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
