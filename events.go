package colugo

import (
	"context"
	"fmt"
	"sync"

	"github.com/colugo-go/colugo/discovery"
)

// PeerEvent reports a peer that joined (was found and described), changed
// its catalog or addresses (Updated), or left (went away or stopped
// answering).
type PeerEvent struct {
	Kind discovery.EventKind
	Peer PeerInfo
}

// DefaultEventBuffer is how many events an Events watcher queues for a
// reader that falls behind (see WithEventBuffer).
const DefaultEventBuffer = 1024

// watcher is one Events channel with its own bounded queue, so that a slow
// reader holds up nothing else; one that stops reading costs at most limit
// events of memory.
type watcher struct {
	mu       sync.Mutex
	queue    []PeerEvent
	limit    int
	dropping bool // an episode of drops: reported once, ends when the reader catches up
	reported bool
	wake     chan struct{} // buffered 1
}

// push queues ev, dropping the oldest queued event if the queue is full;
// it reports whether it dropped one. It never blocks: it runs under the
// node's lock.
func (w *watcher) push(ev PeerEvent) (dropped bool) {
	w.mu.Lock()
	if len(w.queue) >= w.limit {
		w.queue[0] = PeerEvent{} // let the dropped PeerInfo go
		w.queue = w.queue[1:]
		w.dropping, dropped = true, true
	}
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return dropped
}

// Events returns a channel of peer events: first a Joined for every peer
// already known, then every change as it happens, in order. A peer counts
// as joined once it has answered $describe, so its event carries its
// topics and services. The node closes the channel when ctx ends or the
// node closes, and at no other time. Safe for concurrent use; each call
// has its own channel and queue.
//
// A reader that falls behind never holds up the node: its events queue, up
// to WithEventBuffer (default 1024, and at least the first snapshot), and
// beyond that the oldest queued event is dropped, counted in
// Stats().EventsDropped, and ErrSlowConsumer goes to the error handler once
// per episode (until the reader has caught up). Every event carries the
// peer's whole PeerInfo, so a reader that treats Joined and Updated alike
// is right again with the events it gets after a drop; Node.Peers gives
// the current set at any time.
func (n *Node) Events(ctx context.Context, opts ...EventsOption) <-chan PeerEvent {
	cfg := eventsConfig{buffer: DefaultEventBuffer}
	for _, o := range opts {
		if o != nil {
			o.applyEvents(&cfg)
		}
	}
	out := make(chan PeerEvent)
	w := &watcher{wake: make(chan struct{}, 1)}
	n.mu.Lock()
	for _, p := range n.peers {
		if p.visible() {
			w.queue = append(w.queue, PeerEvent{Kind: discovery.Joined, Peer: *p.desc})
		}
	}
	w.limit = max(cfg.buffer, len(w.queue), 1)
	n.watchers[w] = struct{}{}
	started := n.goLocked(func() { n.pumpEvents(ctx, w, out) })
	n.mu.Unlock()
	if !started {
		close(out)
	}
	return out
}

func (n *Node) pumpEvents(ctx context.Context, w *watcher, out chan<- PeerEvent) {
	defer close(out)
	defer func() {
		n.mu.Lock()
		delete(n.watchers, w)
		n.mu.Unlock()
	}()
	var ev PeerEvent // the next event, taken off the queue
	have := false
	for {
		w.mu.Lock()
		if !have && len(w.queue) > 0 {
			ev, have = w.queue[0], true
			w.queue[0] = PeerEvent{}
			w.queue = w.queue[1:]
		}
		report := w.dropping && !w.reported
		w.reported = w.reported || report
		if !have { // the reader has caught up: the episode ends
			w.dropping, w.reported = false, false
		}
		w.mu.Unlock()
		if report { // here, not in push: the error handler must not run under the node's lock
			n.report(fmt.Errorf("%w: peer events (buffer %d): dropping the oldest", ErrSlowConsumer, w.limit))
		}
		var send chan<- PeerEvent // nil, never ready, while there is nothing to send
		if have {
			send = out
		}
		select {
		case send <- ev:
			have = false
		case <-w.wake:
		case <-ctx.Done():
			return
		case <-n.ctx.Done():
			return
		}
	}
}

// emitLocked sends ev to every watcher.
func (n *Node) emitLocked(kind discovery.EventKind, info PeerInfo) {
	for w := range n.watchers {
		if w.push(PeerEvent{Kind: kind, Peer: info}) {
			n.eventsDrops.Add(1)
		}
	}
}
