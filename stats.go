package colugo

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/colugo-go/colugo/transport"
)

// counterLocked returns the counters of a topic, creating them.
func (n *Node) counterLocked(name string) *counters {
	c := n.counters[name]
	if c == nil {
		c = &counters{lastSeq: make(map[string]*senderSeq)}
		n.counters[name] = c
	}
	return c
}

func (n *Node) svcCounterLocked(name string) *counters {
	c := n.svcStats[name]
	if c == nil {
		c = &counters{}
		n.svcStats[name] = c
	}
	return c
}

func (n *Node) svcCounter(name string) *counters {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.svcCounterLocked(name)
}

// Stats is a snapshot of a node's counters, from Node.Stats.
type Stats struct {
	// Topics holds the counters of every topic this node published or
	// subscribed to.
	Topics map[string]TopicStats
	// Subscriptions describes each open subscription of this node, by
	// topic name then in the order they were made: its share of the
	// topic's Delivered, Dropped and DecodeErrors, and what it holds now.
	Subscriptions []SubscriptionStats
	// Services holds the counters of every service this node served or
	// called.
	Services map[string]ServiceStats
	// Transport holds what the transport dropped or refused.
	Transport transport.Stats
	// AuthFailures counts messages refused because they were not sealed
	// with the node's key (or were sealed when it has none), failed
	// authentication, were replays or stale, or were publishes of a
	// sender not described yet (see WithKey).
	AuthFailures uint64
	// AddressesRefused counts addresses, from discovery or from a peer's
	// $describe, that the node did not dial because the dial policy
	// refused them (see EnvDiscovery: host-only discovery dials only
	// loopback; Unix sockets only colugo's abstract ones; a TCP address
	// from $describe only on the host discovery reached). Each refusal is
	// logged at Debug.
	AddressesRefused uint64
	// PeersRefused counts nodes discovery found while the node kept
	// WithMaxPeers peers already (they wait: see WithMaxPeers), and $describe
	// replies refused as too large (over 16 MiB, or past 256 MiB for all
	// the kept ones together).
	PeersRefused uint64
	// EventsDropped counts peer events that Node.Events watchers dropped
	// (the oldest first) because their readers fell behind.
	EventsDropped uint64
	// HistoryRefused counts history requests ($history) this node refused:
	// malformed, for a topic it does not publish, or while it was building
	// as many large answers as it builds at once. Requests of nodes
	// without the key of a keyed node count in AuthFailures.
	HistoryRefused uint64
	// HistoryFailed counts history requests this node made that got no
	// usable answer (the publisher did not answer in time, is an older
	// node, or sent a malformed reply): the subscription went on with live
	// messages.
	HistoryFailed uint64
	// Seed counts seed compatibility's traffic (WithSeedCompat); zero
	// without it.
	Seed SeedStats
}

// TopicStats counts one topic's traffic on one node.
type TopicStats struct {
	Published    uint64 // messages published by this node's publishers
	Received     uint64 // messages that reached this node's subscriptions (local ones included)
	Delivered    uint64 // values offered to subscription channels (summed over subscriptions)
	Dropped      uint64 // values discarded by a subscription's drop policy
	Missed       uint64 // publisher side: messages a subscriber connection missed (its send queue was full), summed over connections
	Gaps         uint64 // messages missing from publishers' sequences (lost on the way, before a reconnect, or a lost tail told by a tail marker), less those Recovered
	DecodeErrors uint64 // messages refused: codec or type mismatch, or payload that did not decode
	Replayed     uint64 // messages from publishers' histories (WithHistory) offered to subscriptions, summed over them
	Recovered    uint64 // of the messages missing from publishers' sequences, those a subscription with history got from the publisher's history
	// HistoryServed counts the messages this node sent from its history
	// to subscribers that asked (publisher side).
	HistoryServed uint64
}

// SubscriptionStats describes one subscription (one Subscribe or
// SubscribeReceived call that has not ended), or one topic that a
// SubscribePattern subscription matched: such a subscription has an entry
// per matched topic, with Pattern set, whose counters are that topic's
// share, and whose Queued and QueuedBytes are those of the queue its
// topics share (the same in each entry).
type SubscriptionStats struct {
	Topic        string
	Pattern      string     // the SubscribePattern pattern that matched Topic; "" for Subscribe
	Policy       DropPolicy // its drop policy
	Delivered    uint64     // values offered to its channel
	Dropped      uint64     // values its policy discarded
	DecodeErrors uint64     // messages it refused: codec or type mismatch, or a payload that did not decode
	Queued       int        // values waiting in its queue and channel
	QueuedBytes  int        // the queue's accounted bytes (payload + QueueEntryOverhead per value)
	Slow         bool       // in a slow-consumer episode: its latest offer dropped something
	History      int        // messages it asked each publisher for (WithHistory; 0: none)
	Replayed     uint64     // values it got from publishers' histories
	Recovered    uint64     // of those, values it had missed live and recovered
	// NoHistory lists the publishers (node ids) it asked for history that
	// keep none (ErrNoHistory): it gets their live messages only.
	NoHistory []string
}

// ServiceStats counts one service's traffic on one node.
type ServiceStats struct {
	Requests     uint64 // requests this node sent
	Failed       uint64 // requests this node sent that failed (any error)
	Served       uint64 // requests this node's handler answered
	HandlerErrs  uint64 // of those, answered with an error
	DecodeErrors uint64 // requests or replies refused: codec mismatch or payload that did not decode
}

// counters are the live, atomically updated form of the stats.
type counters struct {
	published, received, delivered, dropped, missed, gaps, decodeErrors atomic.Uint64
	requests, failed, served, handlerErrs                               atomic.Uint64
	replayed, recovered, historyServed                                  atomic.Uint64

	// recent is the sender seen last, checked without the lock: a topic
	// usually has one publisher at a time, so most messages skip the map.
	recent  atomic.Pointer[senderSeq]
	seqMu   sync.Mutex
	lastSeq map[string]*senderSeq // by sender node id
}

// maxSenders bounds the senders remembered per topic.
const maxSenders = 4096

type senderSeq struct {
	sender string
	last   atomic.Uint64
	// credited is the newest seq whose gap a history subscription
	// recovered (noteRecovered): one recovery is not credited twice.
	credited atomic.Uint64
}

// noteBaseline starts sender's sequence on the topic at seq, when nothing
// was received from it yet: a history answer said seq was its latest, so
// a first live message past seq+1 shows a gap.
func (c *counters) noteBaseline(sender string, seq uint64) {
	if seq == 0 {
		return
	}
	c.seqMu.Lock()
	s := c.lastSeq[sender]
	if s == nil {
		if len(c.lastSeq) >= maxSenders {
			clear(c.lastSeq)
		}
		s = &senderSeq{sender: sender}
		c.lastSeq[sender] = s
	}
	c.seqMu.Unlock()
	s.last.CompareAndSwap(0, seq)
}

// noteRecovered takes out of the gaps the messages of sender that a
// history subscription recovered (seqs, ascending): those the topic had
// counted missing and no other subscription has recovered already.
func (c *counters) noteRecovered(sender string, seqs []uint64) {
	c.seqMu.Lock()
	s := c.lastSeq[sender]
	c.seqMu.Unlock()
	if s == nil {
		return
	}
	last := s.last.Load()
	var n uint64
	for _, q := range seqs {
		if q > last {
			break
		}
		for {
			cr := s.credited.Load()
			if q <= cr {
				break
			}
			if s.credited.CompareAndSwap(cr, q) {
				n++
				break
			}
		}
	}
	for n > 0 { // never below zero, whatever the races
		g := c.gaps.Load()
		d := min(g, n)
		if c.gaps.CompareAndSwap(g, g-d) {
			c.recovered.Add(d)
			return
		}
	}
}

// noteSeq counts the messages missing between a sender's last sequence
// number and seq. A sequence that goes back (a restarted publisher with the
// same id cannot happen: ids are per process) is taken as a new start.
func (c *counters) noteSeq(sender string, seq uint64) {
	if seq == 0 {
		return
	}
	s := c.recent.Load()
	if s == nil || s.sender != sender {
		c.seqMu.Lock()
		s = c.lastSeq[sender]
		if s == nil {
			if len(c.lastSeq) >= maxSenders { // publishers that came and went: forget them
				clear(c.lastSeq)
			}
			s = &senderSeq{sender: sender}
			c.lastSeq[sender] = s
		}
		c.seqMu.Unlock()
		c.recent.Store(s)
	}
	if last := s.last.Swap(seq); last != 0 && seq > last+1 {
		c.gaps.Add(seq - last - 1)
	}
}

// noteTail counts the messages a tail marker says a sender published after
// the last one received from it: seq is the sender's latest. A sender not
// heard from yet sets no baseline (nothing is known to be missing).
func (c *counters) noteTail(sender string, seq uint64) {
	c.seqMu.Lock()
	s := c.lastSeq[sender]
	c.seqMu.Unlock()
	if s == nil {
		return
	}
	for {
		last := s.last.Load()
		if last == 0 || seq <= last {
			return
		}
		if s.last.CompareAndSwap(last, seq) {
			c.gaps.Add(seq - last)
			return
		}
	}
}

// Stats returns a snapshot of the node's counters. It is safe to call at any
// time, also after Close.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Stats{Topics: map[string]TopicStats{}, Services: map[string]ServiceStats{}, Transport: n.tr.Stats(),
		AuthFailures: n.authFailures.Load(), AddressesRefused: n.addrRefused.Load(), PeersRefused: n.peersRefused.Load(), EventsDropped: n.eventsDrops.Load(),
		HistoryRefused: n.historyRefused.Load(), HistoryFailed: n.historyFailed.Load()}
	if n.seed != nil {
		st.Seed = n.seed.stats()
	}
	for name, c := range n.svcStats {
		st.Services[name] = ServiceStats{
			Requests: c.requests.Load(), Failed: c.failed.Load(), Served: c.served.Load(),
			HandlerErrs: c.handlerErrs.Load(), DecodeErrors: c.decodeErrors.Load(),
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(n.subs)) {
		for _, s := range n.subs[topic] {
			q, qb := s.q.queued()
			ss := SubscriptionStats{
				Topic: topic, Pattern: s.pattern, Policy: s.policy, Delivered: s.delivered.Load(), Dropped: s.dropped.Load(),
				DecodeErrors: s.decodeErrors.Load(), Queued: q, QueuedBytes: qb, Slow: s.slow.Load(),
			}
			if s.hist != nil {
				ss.History = s.hist.depth
				ss.Replayed, ss.Recovered = s.hist.counts()
				ss.NoHistory = s.hist.noHistory()
			}
			st.Subscriptions = append(st.Subscriptions, ss)
		}
	}
	for name, c := range n.counters {
		st.Topics[name] = TopicStats{
			Published: c.published.Load(), Received: c.received.Load(), Delivered: c.delivered.Load(),
			Dropped: c.dropped.Load(), Missed: c.missed.Load(), Gaps: c.gaps.Load(), DecodeErrors: c.decodeErrors.Load(),
			Replayed: c.replayed.Load(), Recovered: c.recovered.Load(), HistoryServed: c.historyServed.Load(),
		}
	}
	return st
}
