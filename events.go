package colugo

import (
	"context"
	"errors"
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

// watcher is one Events channel with its own unbounded queue, so that a
// slow reader loses no event and holds up nothing else.
type watcher struct {
	mu    sync.Mutex
	queue []PeerEvent
	wake  chan struct{} // buffered 1
}

func (w *watcher) push(ev PeerEvent) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Events returns a channel of peer events: first a Joined for every peer
// already known, then every change as it happens, in order. No event is
// dropped for a slow reader (they queue). The node closes the channel when
// ctx ends or the node closes. A peer counts as joined once it has answered
// $describe, so its event carries its topics and services.
func (n *Node) Events(ctx context.Context) <-chan PeerEvent {
	out := make(chan PeerEvent)
	w := &watcher{wake: make(chan struct{}, 1)}
	n.mu.Lock()
	for _, p := range n.peers {
		if p.visible() {
			w.queue = append(w.queue, PeerEvent{Kind: discovery.Joined, Peer: *p.desc})
		}
	}
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
	for {
		w.mu.Lock()
		var ev PeerEvent
		have := len(w.queue) > 0
		if have {
			ev = w.queue[0]
			w.queue = w.queue[1:]
		}
		w.mu.Unlock()
		if !have {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			case <-n.ctx.Done():
				return
			}
		}
		select {
		case out <- ev:
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
		w.push(PeerEvent{Kind: kind, Peer: info})
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
