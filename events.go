package colugo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport"
)

// Liveness: a peer whose connection dropped is asked for its $describe at
// once; if it does not answer within livenessTimeout it is reported Left.
// A connection dropped for silence (the transport's heartbeats: nothing
// heard for 2s) means the peer leaves at once, within about 2.5s of its
// last sign of life.
const (
	livenessTimeout = 500 * time.Millisecond
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

// EventsOption configures Events.
type EventsOption interface{ applyEvents(*eventsConfig) }

type eventsConfig struct{ buffer int }

type eventBufferOption int

func (o eventBufferOption) applyEvents(c *eventsConfig) { c.buffer = int(o) }
func (o eventBufferOption) String() string              { return fmt.Sprintf("WithEventBuffer(%d)", int(o)) }

// WithEventBuffer sets how many events Events queues for a reader that
// falls behind before it drops the oldest; values below 1 count as 1.
// Default: DefaultEventBuffer (1024), many times what a network of a few
// hundred nodes starting at once produces.
func WithEventBuffer(n int) EventsOption { return eventBufferOption(n) }

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

func (p *peer) visible() bool { return p.desc != nil && !p.self && !p.dup && !p.lost }

// peerLost is called when a connection to addr (a peer's router or
// publisher) dropped: the peer may have died, or only closed one
// connection. Ask it; leave it if it does not answer.
func (n *Node) peerLost(addr string, cause error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if !p.visible() || (p.info.Router != addr && p.pubAddr != addr && p.dialRouter != addr) {
			continue
		}
		if errors.Is(cause, transport.ErrPeerSilent) {
			// Silent for the whole heartbeat timeout already: asking again
			// would only add a timeout of our own.
			n.loseLocked(p, cause)
			continue
		}
		if !p.checking {
			p.checking = true
			router := p.info.Router
			n.goLocked(func() {
				_, err := n.fetchDescriptionTimeout(router, livenessTimeout)
				n.mu.Lock()
				defer n.mu.Unlock()
				p.checking = false
				if err == nil || n.peers[p.key] != p {
					return
				}
				n.loseLocked(p, err)
			})
		}
	}
}

// removePeerLocked forgets p and reports it Left if it was visible.
func (n *Node) removePeerLocked(p *peer) {
	delete(n.peers, p.key)
	n.forgetLocked(p)
	if p.announced && p.desc != nil {
		n.emitLocked(discovery.Left, *p.desc)
	}
	n.notifyChangedLocked()
}

// loseLocked reports p Left after it stopped answering, but keeps it in
// the peer table: the periodic refresh keeps asking it, so a peer that was
// frozen or cut off comes back (Joined) without discovery's help, while
// discovery's own Left still removes it for good.
func (n *Node) loseLocked(p *peer, cause error) {
	n.log.Info("peer lost", slog.String(keyPeer, p.info.Name), slog.String(keyRouter, p.info.Router), slog.Any(keyError, cause))
	n.forgetLocked(p)
	p.lost = true
	if p.announced && p.desc != nil {
		p.announced = false
		n.emitLocked(discovery.Left, *p.desc)
	}
	n.notifyChangedLocked()
}
