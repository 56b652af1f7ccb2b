package mdns

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/libp2p/zeroconf/v2"

	"github.com/colugo-go/colugo/discovery"
)

const (
	sweepEvery = 100 * time.Millisecond // resolution of Left deadlines
	probeMemo  = 5 * time.Second        // one triggered round per probed instance
)

// goodbyeKicks are the delays after a goodbye at which a round is asked
// for: Update re-registers within milliseconds of its goodbye and answers
// queries at once, so the first round usually finds it.
var goodbyeKicks = []time.Duration{100 * time.Millisecond, 400 * time.Millisecond}

// peerState is what the core knows about one peer.
type peerState struct {
	peer      discovery.Peer
	instance  string    // lowercased, escaped
	seen      time.Time // last seen in a response
	leaveAt   time.Time // set by a goodbye: Left then, unless seen again
	kickedCat string    // catalog a TXT announcement made us query for
}

// core owns the peer table and is the only sender on the event channel.
type core struct {
	selfID, selfInst string
	local            []*net.IPNet
	log              *slog.Logger
	out              chan<- discovery.Event
	kick             chan<- struct{}
	stats            *counters
	expiry, grace    time.Duration
	// settled is the Discovery's Settled channel: closed on obsSettled,
	// after the events of every observation before it were sent on out;
	// nil once closed.
	settled chan<- struct{}

	peers   map[string]*peerState // by ID
	byInst  map[string]string     // instance -> ID
	probed  map[string]time.Time  // instance -> when a probe made us query
	pending []time.Time           // scheduled rounds
}

func newCore(cfg config, selfID, selfInst string, local []*net.IPNet, out chan<- discovery.Event, kick chan<- struct{}, settled chan<- struct{}, stats *counters) *core {
	return &core{
		selfID: selfID, selfInst: selfInst, local: local, log: cfg.logger,
		out: out, kick: kick, settled: settled, stats: stats, expiry: cfg.expiry, grace: cfg.grace,
		peers: map[string]*peerState{}, byInst: map[string]string{}, probed: map[string]time.Time{},
	}
}

func (c *core) run(ctx context.Context, obs <-chan observation) {
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-obs:
			switch o.kind {
			case obsEntry:
				if !c.entry(ctx, o.entry) {
					return
				}
			case obsSettled:
				c.settle(ctx)
			default:
				c.observe(ctx, o)
			}
		case now := <-sweep.C:
			if !c.sweep(ctx, now) {
				return
			}
		}
	}
}

// settle closes the Settled channel: the listener read every packet that
// arrived during the first session's window before obsSettled, and the
// Joined events of their entries have been sent (send returns once the
// consumer's channel took the event), since the core handles observations
// one at a time.
func (c *core) settle(ctx context.Context) {
	if c.settled == nil {
		return
	}
	close(c.settled)
	c.settled = nil
	c.log.DebugContext(ctx, "mdns: settled: first browse session over", slog.Int("peers", len(c.peers)))
}

// requestRound asks the browser for a round now; requests coalesce.
func (c *core) requestRound() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// send delivers ev unless ctx ends first; false means stop.
func (c *core) send(ctx context.Context, ev discovery.Event) bool {
	select {
	case c.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxTracked bounds the nodes a core tracks: each costs memory and an
// event, and a flood of records costs nothing to send.
const maxTracked = 4096

// entry upserts one instance the listener read from a response. Entries
// repeat (every answer to every query), so only differences become
// events.
func (c *core) entry(ctx context.Context, e *zeroconf.ServiceEntry) bool {
	inst := strings.ToLower(e.Instance)
	if inst == c.selfInst {
		return true
	}
	p, err := peerFrom(e.Instance, e.Port, e.Text, e.AddrIPv4, c.local)
	if err != nil {
		c.stats.ignored.Add(1)
		c.log.DebugContext(ctx, "mdns: ignored entry", slog.String(logKeyInstance, e.Instance), slog.Any(logKeyErr, err))
		return true
	}
	if p.ID == c.selfID {
		return true
	}
	now := time.Now()
	st := c.peers[p.ID]
	if st == nil {
		if len(c.peers) >= maxTracked {
			c.stats.overflow.Add(1)
			return true
		}
		c.peers[p.ID] = &peerState{peer: p, instance: inst, seen: now}
		c.byInst[inst] = p.ID
		c.log.InfoContext(ctx, "mdns: peer joined", slog.String(logKeyPeer, p.ID), slog.String(logKeyName, p.Name), slog.String(logKeyRouter, p.Router))
		return c.send(ctx, discovery.Event{Kind: discovery.Joined, Peer: p})
	}
	st.seen, st.leaveAt = now, time.Time{}
	if st.instance != inst {
		delete(c.byInst, st.instance)
		st.instance = inst
		c.byInst[inst] = p.ID
	}
	if st.peer == p {
		return true
	}
	st.peer = p
	c.log.DebugContext(ctx, "mdns: peer updated", slog.String(logKeyPeer, p.ID), slog.String(logKeyRouter, p.Router), slog.String("catalog", p.Catalog))
	return c.send(ctx, discovery.Event{Kind: discovery.Updated, Peer: p})
}

// observe acts on what the passive listener saw.
func (c *core) observe(ctx context.Context, o observation) {
	if o.instance == c.selfInst || (o.id != "" && o.id == c.selfID) {
		return
	}
	id := o.id
	if id == "" {
		id = c.byInst[o.instance]
	}
	st := c.peers[id]
	now := time.Now()
	switch o.kind {
	case obsGoodbye:
		if st == nil || st.instance != o.instance || !st.leaveAt.IsZero() {
			return
		}
		c.stats.goodbyes.Add(1)
		st.leaveAt = now.Add(c.grace)
		for _, d := range goodbyeKicks {
			c.pending = append(c.pending, now.Add(d))
		}
		c.log.DebugContext(ctx, "mdns: goodbye", slog.String(logKeyPeer, id))
	case obsProbe:
		// A node registering: it answers queries already, so a round now
		// finds it well before its first announcement (about 1 s).
		if st != nil && st.leaveAt.IsZero() {
			return
		}
		if t, ok := c.probed[o.instance]; ok && now.Sub(t) < probeMemo {
			return
		}
		c.probed[o.instance] = now
		c.requestRound()
	case obsAlive:
		// Still answering (a rate-limited answer without SRV or address):
		// refresh, unless a goodbye is pending, which only a full entry
		// (a re-registration) cancels.
		if st != nil && st.instance == o.instance && st.leaveAt.IsZero() {
			st.seen = now
			c.log.DebugContext(ctx, "mdns: peer alive (partial answer)", slog.String(logKeyPeer, id))
		}
	case obsText:
		// Another stack changed its TXT in place (Go browsers never report
		// that): query once per new value.
		if st == nil || o.txt.cat == st.peer.Catalog || o.txt.cat == st.kickedCat {
			return
		}
		st.kickedCat = o.txt.cat
		c.requestRound()
	}
}

// sweep reports peers whose goodbye grace or expiry has passed, and fires
// scheduled rounds.
func (c *core) sweep(ctx context.Context, now time.Time) bool {
	keep := c.pending[:0]
	fire := false
	for _, t := range c.pending {
		if now.Before(t) {
			keep = append(keep, t)
		} else {
			fire = true
		}
	}
	c.pending = keep
	if fire {
		c.requestRound()
	}
	for inst, t := range c.probed {
		if now.Sub(t) >= probeMemo {
			delete(c.probed, inst)
		}
	}
	for id, st := range c.peers {
		why := ""
		switch {
		case !st.leaveAt.IsZero() && !now.Before(st.leaveAt):
			why = "goodbye"
		case now.Sub(st.seen) > c.expiry:
			why = "expired"
		default:
			continue
		}
		delete(c.peers, id)
		if c.byInst[st.instance] == id {
			delete(c.byInst, st.instance)
		}
		c.log.InfoContext(ctx, "mdns: peer left", slog.String(logKeyPeer, id), slog.String("why", why))
		if !c.send(ctx, discovery.Event{Kind: discovery.Left, Peer: st.peer}) {
			return false
		}
	}
	return true
}
