package colugo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// History (WithHistory). A publishing node keeps, per topic, the last
// messages its publishers sent, encoded and in plaintext (history). A
// subscription that asks for history fetches them from each publisher with
// a $history control request (wire.HistoryService) to the publisher's
// router, holding that publisher's live messages meanwhile, then delivers
// the fetched ones and the held ones merged in sequence order
// (subHistory). The transports know nothing of it: a replay is sealed for
// the one node that asked, as a reply (which needs the key, held by the
// Node), and goes to one subscription of that node, not to every
// subscription of the topic.

// historyTimeout bounds a history fetch, and so how long a subscription
// holds a publisher's live messages back while it waits for the answer.
const historyTimeout = 2 * time.Second

// historyRetry is how long after a failed fetch a subscription recovers
// nothing from that publisher.
const historyRetry = 5 * time.Second

// flagReplayed marks, on a message inside this node only (never on the
// wire), a message that comes from a publisher's history: wrap functions
// read it (Received.Replayed).
const flagReplayed uint8 = 0x80

// histEntry is one kept message.
type histEntry struct {
	seq      uint64
	sendTime int64
	codec    string
	typ      string
	ext      string // metadata, as published (without a seal's MAC)
	payload  []byte
}

func (e *histEntry) cost() int { return len(e.payload) + len(e.ext) + QueueEntryOverhead }

// history is the messages a node keeps for one topic: a ring of at most
// depth entries and about maxBytes bytes (the newest always kept).
type history struct {
	mu       sync.Mutex
	depth    int
	maxBytes int
	ring     []histEntry // grows by doubling up to depth
	head, n  int
	bytes    int
}

func newHistory(depth, maxBytes int) *history {
	return &history{depth: depth, maxBytes: maxBytes}
}

// resize sets the bounds, dropping the oldest entries past them.
func (h *history) resize(depth, maxBytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.depth, h.maxBytes = depth, maxBytes
	for h.n > h.depth || (h.n > 1 && h.bytes > h.maxBytes) {
		h.dropOldestLocked()
	}
}

func (h *history) at(i int) *histEntry { return &h.ring[(h.head+i)%len(h.ring)] }

// dropOldestLocked removes the oldest entry and returns its payload buffer
// for reuse.
func (h *history) dropOldestLocked() []byte {
	e := h.at(0)
	buf := e.payload
	h.bytes -= e.cost()
	*e = histEntry{}
	h.head = (h.head + 1) % len(h.ring)
	h.n--
	return buf
}

// appendLocked keeps a copy of a published message. The header's strings
// are the publisher's own (no copy); the payload is copied, into the
// buffer of the entry it replaces when that is large enough.
func (h *history) appendLocked(hd *wire.Header, payload []byte) {
	var buf []byte
	if h.n == h.depth {
		buf = h.dropOldestLocked()
	}
	if h.n == len(h.ring) { // grow: keep the entries in order from 0
		ring := make([]histEntry, max(4, min(2*len(h.ring), h.depth)))
		for i := range h.n {
			ring[i] = *h.at(i)
		}
		h.ring, h.head = ring, 0
	}
	if cap(buf) < len(payload) || cap(buf) > 4*len(payload)+256 {
		buf = make([]byte, len(payload)) // a much larger old buffer would pin memory the bound does not count
	}
	buf = buf[:len(payload)]
	copy(buf, payload)
	e := h.at(h.n)
	*e = histEntry{seq: hd.Seq, sendTime: hd.SendTime, codec: hd.Codec, typ: hd.Type, ext: hd.Ext, payload: buf}
	h.n++
	h.bytes += e.cost()
	for h.n > 1 && h.bytes > h.maxBytes {
		h.dropOldestLocked()
	}
}

// reply encodes the newest max entries with a seq above after, oldest
// first, as a history reply of about wire.MaxHistoryReply bytes at most
// (one entry at least), for sender's $history answer. latest reads the
// topic's latest sequence number: under the lock, so that no entry is past
// it. It reports how many entries went in.
func (h *history) reply(sender string, after uint64, limit int, latest func() uint64) ([]byte, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.n
	for i := h.n - 1; i >= 0 && h.at(i).seq > after; i-- {
		first = i
	}
	first = min(h.n, max(first, h.n-limit))
	size := 0
	end := first
	for end < h.n && (end == first || size+h.at(end).cost() <= wire.MaxHistoryReply) {
		size += h.at(end).cost() + 32
		end++
	}
	buf := make([]byte, 0, size+wire.MaxHeader/8)
	buf = wire.AppendHistoryReplyStart(buf, end < h.n, uint64(h.depth), latest())
	var ext []byte
	for i := first; i < end; i++ {
		e := h.at(i)
		ext = append(ext[:0], e.ext...)
		if len(ext)+2 <= wire.MaxExt {
			ext = wire.AppendExt(ext, wire.ExtReplayed, "")
		}
		hd := wire.Header{Kind: transport.KindPublish, Codec: e.codec, Type: e.typ, Sender: sender,
			Seq: e.seq, SendTime: e.sendTime, Ext: string(ext)}
		buf = wire.AppendHistoryEntry(buf, &hd, e.payload)
	}
	return buf, end - first
}

// historyAnswer is the $history answer of sender for this topic: what its
// history holds (h.reply), or, without one, that it keeps none.
func (q *pubSeq) historyAnswer(sender string, after uint64, limit int) ([]byte, int) {
	if h := q.hist.Load(); h != nil {
		return h.reply(sender, after, limit, q.Load)
	}
	return wire.AppendHistoryReplyStart(nil, false, 0, q.Load()), 0
}

// historyConfig is one publisher's WithHistory and WithHistoryBytes.
type historyConfig struct{ depth, bytes int }

// setHistoryLocked makes the topic's history as deep and large as its
// publishers ask (the largest of each), creating or dropping it; n.mu is
// held.
func (n *Node) setHistoryLocked(pc *pubCount) {
	depth, bytes := 0, 0
	for _, c := range pc.hist {
		depth, bytes = max(depth, c.depth), max(bytes, c.bytes)
	}
	pc.info.History = depth
	switch h := pc.seq.hist.Load(); {
	case depth == 0:
		pc.seq.hist.Store(nil)
	case h == nil:
		pc.seq.hist.Store(newHistory(depth, bytes))
	default:
		h.resize(depth, bytes)
	}
}

// serveHistory answers a $history control request, already opened.
func (n *Node) serveHistory(msg *transport.Message, rw transport.ReplyWriter) {
	req, err := wire.DecodeHistoryRequest(msg.Payload)
	if err != nil {
		n.historyRefused.Add(1)
		n.replyError(rw, msg, CodeInvalidArgument, err.Error())
		return
	}
	n.mu.Lock()
	pc := n.pubs[req.Topic]
	var q *pubSeq
	if pc != nil {
		q = pc.seq
	}
	c := n.counters[req.Topic]
	n.mu.Unlock()
	if q == nil {
		n.historyRefused.Add(1)
		n.replyError(rw, msg, CodeNotServed, "topic not published here")
		return
	}
	big := false
	if h := q.hist.Load(); h != nil && h.size() > smallHistory {
		select {
		case historyBuilds <- struct{}{}:
			big = true
		default:
			n.historyRefused.Add(1)
			n.replyError(rw, msg, CodeUnavailable, "too many large history requests at once")
			return
		}
	}
	payload, served := q.historyAnswer(n.id, req.After, req.Max)
	if big {
		<-historyBuilds
	}
	if c != nil {
		c.historyServed.Add(uint64(served))
	}
	n.reply(rw, msg, wire.HistoryCodec, "", payload, 0, "")
}

// historyBuilds bounds the large history replies (of histories over
// smallHistory bytes; each reply up to wire.MaxHistoryReply bytes) being
// built at once in this process, whatever the number of connections
// asking: past it, requests are refused as unavailable. Once built, a
// reply counts against the transport's send budget.
var historyBuilds = make(chan struct{}, 8)

const smallHistory = 1 << 20

// size is the bytes the history holds.
func (h *history) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bytes
}

// errOldPeer is a history fetch answered by a node that does not know
// $history (an older colugo): it keeps no history.
var errOldPeer = errors.New("colugo: the publisher's node does not serve history")

// fetchHistory asks the node id at router (this node: router "") for its
// history of topic: the newest max messages with a seq above after. The
// entries it returns are checked: from id, in increasing order above
// after, at most max.
func (n *Node) fetchHistory(ctx context.Context, router, id, topic string, max int, after uint64) (wire.HistoryReply, error) {
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	var payload []byte
	if id == n.id {
		n.mu.Lock()
		pc := n.pubs[topic]
		n.mu.Unlock()
		if pc == nil {
			return wire.HistoryReply{}, nil // no longer published here: nothing kept
		}
		payload, _ = pc.seq.historyAnswer(n.id, after, max)
	} else {
		seq := n.reqSeq.Add(1)
		deadline, _ := ctx.Deadline()
		req := &transport.Message{Name: wire.HistoryService, Header: wire.Header{
			Kind: transport.KindControl, Codec: wire.HistoryCodec, Sender: n.id, SendTime: n.sendClock(),
			Deadline: int64(time.Until(deadline)), Seq: seq,
		}, Payload: wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: topic, Max: max, After: after})}
		n.sealMsg(req, binding{peer: id})
		rep, err := n.tr.Request(ctx, router, req)
		if err != nil {
			return wire.HistoryReply{}, err
		}
		if err = n.openMsg(rep, binding{peer: n.id, seq: seq}); err != nil {
			return wire.HistoryReply{}, err
		}
		switch {
		case rep.Header.Status == uint8(CodeNotServed) && rep.Header.Error == errUnknownControl:
			return wire.HistoryReply{}, errOldPeer
		case rep.Header.Status == uint8(CodeNotServed):
			return wire.HistoryReply{}, nil // it stopped publishing the topic: nothing kept
		case rep.Header.Status != 0:
			return wire.HistoryReply{}, &RemoteError{Service: wire.HistoryService, Code: Code(rep.Header.Status), Message: rep.Header.Error}
		}
		payload = rep.Payload
	}
	r, err := wire.DecodeHistoryReply(payload)
	if err != nil {
		return wire.HistoryReply{}, err
	}
	if len(r.Entries) > max {
		return wire.HistoryReply{}, fmt.Errorf("%w: %d entries, %d asked", wire.ErrHistory, len(r.Entries), max)
	}
	// The entries are the newest kept: at most depth of them, none past
	// latest, each from id, in increasing order above after.
	oldest := uint64(1)
	if r.Latest > r.Depth {
		oldest = r.Latest - r.Depth + 1
	}
	last := after
	for i := range r.Entries {
		h := &r.Entries[i].Header
		if h.Sender != id || h.Seq <= last || h.Seq > r.Latest || h.Seq < oldest || h.Flags&(wire.FlagSealed|wire.FlagTail) != 0 {
			return wire.HistoryReply{}, fmt.Errorf("%w: entry %d (sender %q, seq %d after %d, latest %d, depth %d) out of place",
				wire.ErrHistory, i, h.Sender, h.Seq, last, r.Latest, r.Depth)
		}
		last = h.Seq
	}
	return r, nil
}

// fetchShared is fetchHistory of the newest limit messages (after 0),
// one request for all the callers that ask the same at the same time: a
// thousand subscriptions of a topic made at once cost the publisher one
// answer, not a thousand. A caller that joins a request sent before it
// began holding live messages may miss some published in between: the
// answer's latest seq, its baseline, shows them as a gap, which it
// recovers.
func (n *Node) fetchShared(router, id, topic string, limit int) (wire.HistoryReply, error) {
	key := id + "\x00" + topic + "\x00" + strconv.Itoa(limit)
	v, err, _ := n.fetches.Do(key, func() (any, error) {
		return n.fetchHistory(n.ctx, router, id, topic, limit, 0)
	})
	r, _ := v.(wire.HistoryReply)
	return r, err // r.Entries is shared: read only
}

// errUnknownControl is the error text of a node's answer to a control
// request it does not know.
const errUnknownControl = "unknown control request"

// pubHistory is what a history subscription knows of one publisher.
type pubHistory struct {
	id     string
	router string // "" for this node
	depth  int    // what the publisher keeps (its $describe)
	last   uint64 // newest seq delivered from it
	// hw is the newest seq delivered from its history: a live message at
	// or below it is one already delivered.
	hw       uint64
	fetching bool
	synced   bool   // a fetch completed: last is a baseline for gaps
	gapEnd   uint64 // a recovery's gap is (last, gapEnd): what it recovers of it counts Recovered
	// skipped is the range (first, second) of seqs a merge passed over:
	// newer than what had been delivered, older than the replayed ones.
	// A live copy of one that arrives after the merge is too late to keep
	// the order: it is dropped, and counted (Dropped).
	skipped [2]uint64
	// pending is a first answer waiting for the live messages it
	// overtook: until a live one with seq pendingFirst-1 or more comes, or
	// pendingTimer fires.
	pending      *wire.HistoryReply
	pendingFirst uint64
	pendingTimer *time.Timer
	// refetch: a merge stopped at a hole among the held messages (gapEnd
	// is the first past it); ph is still fetching, to recover it.
	refetch  bool
	failed   time.Time            // when a fetch last failed
	gaveUp   bool                 // the hold overflowed: live messages flow while the fetch ends
	held     []*transport.Message // live messages held while fetching
	heldSize int
	told     bool // ErrNoHistory reported
}

// subHistory is the history side of a subscription (WithHistory).
type subHistory struct {
	depth   int
	holdMax int   // bytes of live messages held per publisher while fetching
	start   int64 // when the subscription was made (unix ns)

	mu   sync.Mutex
	pubs map[string]*pubHistory // by node id

	// Read by Stats without mu, which is held while delivering (and so
	// while the error handler runs, which may call Stats).
	replayed, recovered atomic.Uint64
	noHist              atomic.Pointer[[]string] // publishers that keep none, sorted
}

// joinSlack is how many messages beyond the n it asks for a first fetch
// takes: those published after the subscription began (send time, on the
// publisher's clock) are delivered too, as live messages would have been,
// so that the ones whose live copies were still on their way when the
// history answered are not lost.
const joinSlack = 256

// maxHoldBytes bounds what a subscription holds per publisher while it
// fetches that publisher's history, whatever its queue bound.
const maxHoldBytes = 64 << 20

// notePublisherLocked tells s that node id (at router; "" for this node)
// publishes its topic and keeps depth messages. A publisher new to s is
// asked for its history (depth > 0) or reported as keeping none. n.mu is
// held.
func (n *Node) notePublisherLocked(s *subCore, id, router string, depth int) {
	sh := s.hist
	sh.mu.Lock()
	ph := sh.pubs[id]
	isNew := ph == nil
	if isNew {
		if len(sh.pubs) >= maxSenders {
			for k, o := range sh.pubs { // publishers that came and went: forget one not being fetched
				if !o.fetching {
					delete(sh.pubs, k)
					break
				}
			}
		}
		ph = &pubHistory{id: id}
		sh.pubs[id] = ph
	}
	listChanged := isNew || (ph.depth == 0) != (depth == 0)
	ph.router, ph.depth = router, depth
	fetch := isNew && depth > 0
	if fetch {
		ph.fetching = true
	}
	tell := depth == 0 && !ph.told
	if tell {
		ph.told = true
	}
	if listChanged {
		sh.listNoHistoryLocked()
	}
	sh.mu.Unlock()
	switch {
	case fetch:
		n.goLocked(func() { n.runHistoryFetch(s, ph, min(sh.depth+joinSlack, MaxHistory), 0) })
	case tell:
		err := fmt.Errorf("%w: topic %q: publisher %s sends live messages only (WithHistory on its publisher keeps some)", ErrNoHistory, s.info.Name, id)
		n.goLocked(func() { n.report(err) }) // not under n.mu: the handler is the user's
	}
}

// startRecovery fetches, in the background, what s missed from ph after
// after. The caller set ph.fetching under sh.mu and released it: a
// goroutine started from the receive path is counted under reqMu (as
// serveRequest's), which is above sh.mu in the lock order.
func (n *Node) startRecovery(s *subCore, ph *pubHistory, after uint64) {
	n.reqMu.Lock()
	started := n.startLocked()
	n.reqMu.Unlock()
	if !started { // closing: release what is held
		n.deliverHistory(s, ph, wire.HistoryReply{}, true, false)
		return
	}
	go func() {
		defer n.wg.Done()
		n.runHistoryFetch(s, ph, MaxHistory, after)
	}()
}

// fetchRecovery is fetchHistory for a recovery, which runs when a
// publisher's live messages show a loss: usually just as its connection
// comes back after a cut, when the request path to it may still be
// redialling. A request the transport could not carry is tried again,
// with a growing pause, for up to historyTimeout in all; an answer, even
// a refusal, is final.
func (n *Node) fetchRecovery(router, id, topic string, max int, after uint64) (wire.HistoryReply, error) {
	start := time.Now()
	pause := 20 * time.Millisecond
	for {
		r, err := n.fetchHistory(n.ctx, router, id, topic, max, after)
		var re *RemoteError
		if err == nil || errors.Is(err, errOldPeer) || errors.Is(err, wire.ErrHistory) || errors.As(err, &re) ||
			n.ctx.Err() != nil || time.Since(start)+pause >= historyTimeout {
			return r, err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return r, err
		}
		pause *= 2
	}
}

// runHistoryFetch fetches ph's history for s until complete, delivering
// each part, then releases the live messages held meanwhile. A first
// fetch (after 0) takes the newest limit messages; a recovery everything
// kept after after, until its gap is covered. Either takes at most limit
// (a recovery MaxHistory) messages in all, whatever the parts say: what
// was published meanwhile arrives live anyway, and a publisher that
// always says "more" cannot make it replay for ever.
func (n *Node) runHistoryFetch(s *subCore, ph *pubHistory, limit int, after uint64) {
	sh := s.hist
	recovery := after > 0
	sh.mu.Lock()
	var known uint64 // the newest seq seen from ph: a recovery's answer must have it
	if ph.gapEnd > 0 {
		known = ph.gapEnd - 1
	}
	sh.mu.Unlock()
	for left := limit; ; {
		sh.mu.Lock()
		router := ph.router
		sh.mu.Unlock()
		ask := left
		if recovery {
			ask = MaxHistory // the newest MaxHistory after after: all it keeps, oldest first
		}
		var r wire.HistoryReply
		var err error
		if after == 0 {
			r, err = n.fetchShared(router, ph.id, s.info.Name, ask)
		} else {
			r, err = n.fetchRecovery(router, ph.id, s.info.Name, ask, after)
		}
		if err == nil && len(r.Entries) > 0 && r.Latest < known {
			err = fmt.Errorf("%w: latest %d, but %d was received from it", wire.ErrHistory, r.Latest, known)
		}
		left -= len(r.Entries)
		if err == nil && r.More {
			switch {
			case len(r.Entries) == 0: // it would never end
				err = fmt.Errorf("%w: more promised, no entry given", wire.ErrHistory)
			case left <= 0, recovery && r.Entries[len(r.Entries)-1].Header.Seq >= known:
				r.More = false // all that was asked for, or the gap is covered: the rest comes live
			}
		}
		ok := err == nil
		if err != nil {
			n.historyFailed.Add(1)
			n.log.Debug("history fetch failed", slog.String(keyTopic, s.info.Name), slog.String(keyPeer, ph.id), slog.Any(keyError, err))
			if errors.Is(err, errOldPeer) {
				sh.mu.Lock()
				ph.depth = 0
				sh.listNoHistoryLocked()
				sh.mu.Unlock()
			}
			r = wire.HistoryReply{}
			sh.mu.Lock()
			ph.failed = time.Now() // no recovery from it for a while: each would hold its live messages again
			sh.mu.Unlock()
		}
		more := n.deliverHistory(s, ph, r, recovery, ok)
		if !more {
			again, from := sh.takeRefetch(ph)
			if !again {
				break
			}
			// A hole after what the answer knew of: recover it.
			recovery, after, left = true, from, MaxHistory
			sh.mu.Lock()
			known = ph.gapEnd - 1
			sh.mu.Unlock()
			continue
		}
		if s.ending.Load() {
			break
		}
		sh.mu.Lock()
		after = ph.last // the rest of what is kept after what came
		sh.mu.Unlock()
	}
}

// deliverHistory delivers the entries of r newer than what s has from ph,
// marked replayed, and, unless r says more is kept, the live messages held
// meanwhile, merged with them in sequence order (a message both fetched
// and held goes once, as live); it reports whether to fetch more.
//
// After a complete answer (ok), the publisher's latest seq is the baseline
// for gaps; after a failed one, the first live message will be.
func (n *Node) deliverHistory(s *subCore, ph *pubHistory, r wire.HistoryReply, recovery, ok bool) (more bool) {
	sh := s.hist
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if first, wait := sh.awaitLive(ph, r, recovery); wait && !s.ending.Load() {
		// The answer's oldest message came after the subscription began
		// and after what it has: older ones may still be on their way
		// live (the answer overtook them). Deliver once they are here (a
		// live message just before the answer's first), or after a
		// moment: live messages come in order.
		ph.pending, ph.pendingFirst = &r, first
		ph.pendingTimer = time.AfterFunc(liveGrace, func() {
			// Counted like the node's goroutines, so that Close waits for
			// it; after Close it does nothing (the subscription is gone).
			n.reqMu.Lock()
			started := n.startLocked()
			n.reqMu.Unlock()
			if !started {
				return
			}
			defer n.wg.Done()
			sh.mu.Lock()
			n.releasePendingLocked(s, ph)
			sh.mu.Unlock()
			if again, from := sh.takeRefetch(ph); again {
				n.startRecovery(s, ph, from)
			}
		})
		return false
	}
	return n.mergeLocked(s, ph, r, recovery, ok)
}

// liveGrace bounds how long a first fetch's answer waits for live copies
// that it overtook (awaitLive).
const liveGrace = 100 * time.Millisecond

// awaitLive reports whether a complete first answer should wait for live
// messages it may have overtaken, and the seq of its oldest wanted entry.
func (sh *subHistory) awaitLive(ph *pubHistory, r wire.HistoryReply, recovery bool) (uint64, bool) {
	if recovery || r.More || len(r.Entries) == 0 {
		return 0, false
	}
	for i := range r.Entries {
		e := &r.Entries[i].Header
		if e.Seq <= ph.last || (e.Seq+uint64(sh.depth) <= r.Latest && e.SendTime < sh.start) {
			continue // not delivered (see mergeLocked)
		}
		heldBefore := false
		for _, m := range ph.held {
			if m.Header.Seq+1 >= e.Seq {
				heldBefore = true // the live stream reached it already
			}
		}
		return e.Seq, e.Seq > ph.last+1 && e.SendTime >= sh.start && !heldBefore
	}
	return 0, false
}

// releasePendingLocked merges a first answer that waited for live
// messages; sh.mu is held.
func (n *Node) releasePendingLocked(s *subCore, ph *pubHistory) {
	r := ph.pending
	if r == nil {
		return
	}
	ph.pending = nil
	if ph.pendingTimer != nil {
		ph.pendingTimer.Stop()
		ph.pendingTimer = nil
	}
	n.mergeLocked(s, ph, *r, false, true)
}

// mergeLocked is deliverHistory's merge; sh.mu is held.
func (n *Node) mergeLocked(s *subCore, ph *pubHistory, r wire.HistoryReply, recovery, ok bool) (more bool) {
	sh := s.hist
	more = r.More && !ph.gaveUp && !s.ending.Load()
	type cand struct {
		m        *transport.Message
		replayed bool
	}
	var all []cand
	for i := range r.Entries {
		e := &r.Entries[i]
		if !recovery && e.Header.Seq+uint64(sh.depth) <= r.Latest && e.Header.SendTime < sh.start {
			continue // older than the n asked for, and published before the subscription: not wanted
		}
		if e.Header.Seq > ph.last {
			m := &transport.Message{Name: s.info.Name, Header: e.Header, Payload: e.Payload}
			m.Header.Flags |= flagReplayed
			all = append(all, cand{m, true})
		}
	}
	if !more {
		for _, m := range ph.held {
			all = append(all, cand{m, false})
		}
	}
	// Live first among equals: it is delivered, the fetched copy skipped.
	slices.SortStableFunc(all, func(a, b cand) int {
		switch {
		case a.m.Header.Seq < b.m.Header.Seq:
			return -1
		case a.m.Header.Seq > b.m.Header.Seq:
			return 1
		case !a.replayed && b.replayed:
			return -1
		case a.replayed && !b.replayed:
			return 1
		}
		return 0
	})
	// A replayed message was missed live when it is in the gap a recovery
	// was started for, or between live messages held meanwhile (a first
	// fetch that answers after the stream went on without it).
	var heldMin, heldMax uint64
	for i, m := range ph.held {
		if q := m.Header.Seq; i == 0 || q < heldMin {
			heldMin = q
		}
		heldMax = max(heldMax, m.Header.Seq)
	}
	// Counted before any is delivered, so that a reader that has the
	// values sees them counted.
	var recovered []uint64
	pre, last := ph.last, ph.last
	n0 := 0
	var rest []*transport.Message // held ones past a hole, held on
	for i, c := range all {
		seq := c.m.Header.Seq
		if seq <= last && seq != 0 {
			continue
		}
		// Once per hole: a recovery's merge delivers through.
		if seq > last+1 && last >= r.Latest && !c.replayed && !more && ok && !recovery && ph.depth > 0 && !s.ending.Load() {
			// A hole among the live messages held, past what the answer
			// knew of: published after it, so the publisher may hold
			// them. Deliver up to the hole, hold the rest, recover it.
			for _, d := range all[i:] {
				if !d.replayed && d.m.Header.Seq > last {
					rest = append(rest, d.m)
				}
			}
			ph.refetch, ph.gapEnd = true, seq
			break
		}
		last = max(last, seq)
		all[n0] = c
		n0++
		if c.replayed && ((recovery && seq < ph.gapEnd) || (heldMin < seq && seq < heldMax)) { // past those: replays of live copies still on their way
			recovered = append(recovered, seq)
		}
	}
	ph.last = last
	if len(recovered) > 0 {
		sh.recovered.Add(uint64(len(recovered)))
		s.c.noteRecovered(ph.id, recovered)
	}
	if n0 > 0 && all[0].replayed && all[0].m.Header.Seq > pre+1 {
		ph.skipped = [2]uint64{pre, all[0].m.Header.Seq}
	}
	for _, c := range all[:n0] {
		if !c.replayed {
			s.offerChecked(c.m, true, false, pubWait{})
			continue
		}
		ph.hw = max(ph.hw, c.m.Header.Seq)
		sh.replayed.Add(1)
		s.c.replayed.Add(1)
		s.offerChecked(c.m, false, false, pubWait{})
	}
	if more {
		return true
	}
	if ph.refetch {
		ph.held, ph.heldSize = rest, 0
		for _, m := range rest {
			ph.heldSize += len(m.Payload) + QueueEntryOverhead
		}
		return false // still fetching: the caller recovers the hole (takeRefetch)
	}
	// Everything the publisher had published when it answered has been
	// delivered or is older than what was asked: a live message past the
	// next number shows a gap to recover.
	ph.last = max(ph.last, r.Latest)
	if ok {
		s.c.noteBaseline(ph.id, r.Latest)
	}
	ph.synced = ph.synced || ok || len(ph.held) > 0
	ph.held, ph.heldSize, ph.fetching, ph.gaveUp, ph.gapEnd = nil, 0, false, false, 0
	return false
}

// deliverLive takes a live message of the subscription's topic: it holds
// it while the sender's history is being fetched, drops it when its
// history already delivered it, starts a recovery when it shows a gap, and
// otherwise delivers it.
func (sh *subHistory) deliverLive(s *subCore, msg *transport.Message, exclusive, local bool, w pubWait) {
	sh.mu.Lock()
	ph := sh.pubs[msg.Header.Sender]
	seq := msg.Header.Seq
	switch {
	case ph == nil: // not known as a publisher (yet): live only
	case ph.fetching && !ph.gaveUp:
		if ph.heldSize+len(msg.Payload)+QueueEntryOverhead > sh.holdMax && len(ph.held) > 0 {
			// Too much to hold: let live messages through; the fetch
			// still delivers what is newer than them.
			ph.gaveUp = true
			for _, m := range ph.held {
				ph.last = max(ph.last, m.Header.Seq)
				s.offerChecked(m, true, false, pubWait{})
			}
			ph.held, ph.heldSize = nil, 0
			break
		}
		ph.hold(msg)
		if ph.pending != nil && seq+1 >= ph.pendingFirst { // the live stream caught up with the answer
			s.node.releasePendingLocked(s, ph)
			sh.mu.Unlock()
			if again, from := sh.takeRefetch(ph); again {
				s.node.startRecovery(s, ph, from)
			}
			return
		}
		sh.mu.Unlock()
		return
	case seq != 0 && seq <= ph.hw:
		if ph.skipped[0] < seq && seq < ph.skipped[1] {
			// Published after this subscription reached the publisher and
			// before the history answered, and older than what the answer
			// delivered: delivering it now would break the order.
			s.c.dropped.Add(1)
			s.dropped.Add(1)
		}
		sh.mu.Unlock()
		return // delivered from its history already, or older than that
	case ph.depth > 0 && ph.synced && seq > ph.last+1 && !s.ending.Load() && time.Since(ph.failed) > historyRetry:
		// A gap: fetch what is missing, holding this one and what follows.
		after := ph.last
		ph.fetching, ph.gapEnd = true, seq
		ph.hold(msg)
		sh.mu.Unlock()
		s.node.startRecovery(s, ph, after)
		return
	}
	if ph != nil {
		ph.last = max(ph.last, seq)
		if !ph.synced && ph.depth > 0 && !ph.fetching { // its fetch failed: this is the baseline
			ph.synced = true
		}
	}
	s.offerChecked(msg, exclusive, local, w)
	sh.mu.Unlock()
}

// takeRefetch reports whether a merge left a hole to recover (ph still
// fetching), and from which seq, clearing it.
func (sh *subHistory) takeRefetch(ph *pubHistory) (bool, uint64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !ph.refetch {
		return false, 0
	}
	ph.refetch = false
	return true, ph.last
}

// hold keeps a copy of a live message until the fetch ends.
func (ph *pubHistory) hold(msg *transport.Message) {
	ph.held = append(ph.held, copyMessage(msg))
	ph.heldSize += len(msg.Payload) + QueueEntryOverhead
}

// noteTail starts a recovery when a tail marker says the sender published
// past what s has from it.
func (sh *subHistory) noteTail(s *subCore, sender string, seq uint64) {
	sh.mu.Lock()
	ph := sh.pubs[sender]
	if ph == nil || ph.fetching || ph.depth == 0 || !ph.synced || seq <= ph.last || s.ending.Load() || time.Since(ph.failed) <= historyRetry {
		sh.mu.Unlock()
		return
	}
	ph.fetching, ph.gapEnd = true, seq+1
	after := ph.last
	sh.mu.Unlock()
	s.node.startRecovery(s, ph, after)
}

// listNoHistoryLocked updates the list of publishers that keep no
// history; sh.mu is held.
func (sh *subHistory) listNoHistoryLocked() {
	var ids []string
	for id, ph := range sh.pubs {
		if ph.depth == 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	sh.noHist.Store(&ids)
}

// noHistory lists the publishers that keep no history, sorted.
func (sh *subHistory) noHistory() []string {
	if p := sh.noHist.Load(); p != nil && len(*p) > 0 {
		return slices.Clone(*p)
	}
	return nil
}

func (sh *subHistory) counts() (replayed, recovered uint64) {
	return sh.replayed.Load(), sh.recovered.Load()
}

// copyMessage is a copy of msg that owns its payload.
func copyMessage(msg *transport.Message) *transport.Message {
	return &transport.Message{Name: msg.Name, Header: msg.Header, Payload: append([]byte(nil), msg.Payload...), Exclusive: true}
}

// notePeerLocked tells s of p when p publishes s's topic; n.mu is held.
func (n *Node) notePeerLocked(s *subCore, p *peer) {
	if !p.visible() || p.pubAddr == "" {
		return
	}
	for _, t := range p.desc.Topics {
		if t.Name == s.info.Name {
			n.notePublisherLocked(s, p.desc.ID, p.dialRouter, t.History)
			return
		}
	}
}
