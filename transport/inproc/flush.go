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

// drained waits until l's queue is empty or l is cut.
func (l *link) drained(ctx context.Context) error {
	for {
		l.qmu.Lock()
		if l.head == len(l.q) && !l.taking {
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
