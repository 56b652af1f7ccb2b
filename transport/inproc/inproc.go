// Package inproc is a transport for nodes in one process: the same semantics
// as transport/zmq (per-subscriber bounded queues, prefix subscriptions,
// requests matched by id, cancels, peer loss, close behaviour) with no sockets
// and no encoding. colugotest builds on it, and it is the in-process ceiling
// for benchmarks.
//
// Transports meet through a [Network]; addresses are names like
// "inproc:3/router" that are never reused within a Network.
package inproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/transport"
)

// Defaults of the per-subscriber send queue, as in transport/zmq: a bound
// in bytes that binds first, and a count far above it.
const (
	DefaultQueue      = 1 << 20
	DefaultQueueBytes = 64 << 20
)

// Network connects the transports created from it. The zero value is not
// usable; call NewNetwork. A Network is safe for concurrent use.
type Network struct {
	mu    sync.Mutex
	next  int
	nodes map[string]*Transport // by router and by pub address
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{nodes: make(map[string]*Transport)}
}

// Option configures a Transport.
type Option interface{ apply(*Transport) }

type queueOption int

func (o queueOption) apply(t *Transport) { t.queueLen = int(o) }

// WithQueue sets the per-subscriber send queue length in messages.
// Default: 1<<20 ([DefaultQueue]). A subscriber that falls this far behind
// misses messages (counted in Stats().SendDropped), unless back-pressure
// makes Publish wait.
func WithQueue(n int) Option { return queueOption(n) }

type queueBytesOption int

func (o queueBytesOption) apply(t *Transport) { t.queueBytes = int(o) }

// WithQueueBytes bounds the bytes each subscriber's queue holds: its
// messages' payloads, names and header strings, plus 64 bytes each. One
// message of any size can always wait. Default: 64 MiB
// ([DefaultQueueBytes]), which holds a burst of 100,000 messages of 64
// bytes, 10,000 of 1 KiB or 1,000 of 64 KiB; a subscriber that stops
// reading pins at most that much (payloads are shared by subscribers).
func WithQueueBytes(n int) Option { return queueBytesOption(n) }

// New returns a transport on net. It does nothing until Listen.
func (n *Network) New(opts ...Option) *Transport {
	t := &Transport{
		net:        n,
		queueLen:   DefaultQueue,
		queueBytes: DefaultQueueBytes,
		subs:       make(map[*link]struct{}),
		byTopic:    make(map[string][]*link),
		out:        make(map[string]*link),
		pending:    make(map[uint64]*pending),
	}
	for _, o := range opts {
		o.apply(t)
	}
	t.queueLen = max(t.queueLen, 1)
	t.queueBytes = max(t.queueBytes, 1)
	return t
}

// Transport is an in-process transport.Transport.
//
// Lock order: a transport's mu before any transport's subsMu; never the
// other way, so that nodes subscribed to each other can close concurrently.
type Transport struct {
	net        *Network
	queueLen   int
	queueBytes int
	h          transport.Handler
	ep         transport.Endpoint

	nextID  atomic.Uint64
	dropped atomic.Uint64
	lost    atomic.Uint64
	closed  atomic.Bool

	mu      sync.Mutex
	out     map[string]*link    // this transport's subscriptions, by publisher address
	pending map[uint64]*pending // requests in flight, by id

	subsMu  sync.RWMutex
	subs    map[*link]struct{} // subscribers of this transport's publisher
	byTopic map[string][]*link // the links subscribed to each topic: Publish visits only those

	wg sync.WaitGroup // delivery goroutines of out links
}

var _ transport.Transport = (*Transport)(nil)

// link is one subscription connection from a subscriber to a publisher.
// Its goroutine, owned by the subscriber, drains queue in order.
type link struct {
	pub     *Transport
	pubAddr string
	from    string        // the subscriber's router address, for SubscriberStats
	stop    chan struct{} // closed once, under sub.mu, when the link is cut
	lostErr error         // set before stop closes when the publisher went away

	mu     sync.Mutex      // and pub.subsMu to change topics
	topics map[string]bool // exact topic names (inproc peers are all colugo nodes), and whether each asks for back-pressure

	// The queue, bounded by pub's queueLen and queueBytes; qmu guards it.
	// ready has one slot: the queue is not empty. room is closed when the
	// deliverer takes a message while someone waits (nil otherwise).
	qmu       sync.Mutex
	q         []*transport.Message
	head      int
	qbytes    int
	ready     chan struct{}
	room      chan struct{}
	demoted   bool // a Publish waited in vain: do not wait until the queue drains to demotedAt/2
	demotedAt int
	slow      bool   // missed its latest message, or demoted
	taking    bool   // the deliverer took a message it has not yet handed over (Flush waits for it)
	pushed    uint64 // messages ever queued (Sync)
	passed    uint64 // of them, handed over (Sync)
	dropped   atomic.Uint64
}

// msgSize is what a message counts against a queue's byte bound.
func msgSize(m *transport.Message) int {
	h := &m.Header
	return len(m.Name) + len(m.Payload) + len(h.Codec) + len(h.Type) + len(h.Sender) + len(h.Error) + 64
}

// push queues m unless the queue is full.
func (l *link) push(m *transport.Message) bool {
	size := msgSize(m)
	l.qmu.Lock()
	n := len(l.q) - l.head
	if n > 0 && (n >= l.pub.queueLen || l.qbytes+size > l.pub.queueBytes) {
		l.qmu.Unlock()
		return false
	}
	if l.head > 0 && l.head == len(l.q) { // empty: reuse the array from the start
		clear(l.q)
		l.q, l.head = l.q[:0], 0
	}
	l.q = append(l.q, m)
	l.pushed++
	l.qbytes += size
	if !l.demoted {
		l.slow = false
	}
	l.qmu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
	return true
}

// handed records that the message pop returned was handed to the
// subscriber, for Flush.
func (l *link) handed() {
	l.qmu.Lock()
	l.taking = false
	l.passed++
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
	l.qmu.Unlock()
}

// pop takes the next message, or nil if the queue is empty.
func (l *link) pop() *transport.Message {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if l.head == len(l.q) {
		return nil
	}
	m := l.q[l.head]
	l.q[l.head] = nil
	l.head++
	l.taking = true
	if l.head > 1024 && l.head*2 > len(l.q) { // compact, so the array does not grow without bound
		l.q = l.q[:copy(l.q, l.q[l.head:])]
		clear(l.q[len(l.q) : len(l.q)+l.head])
		l.head = 0
	}
	l.qbytes -= msgSize(m)
	if l.demoted && l.qbytes <= l.demotedAt/2 {
		l.demoted = false
	}
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
	return m
}

// missed counts a message l's subscriber missed.
func (l *link) missed() {
	l.dropped.Add(1)
	l.qmu.Lock()
	l.slow = true
	l.qmu.Unlock()
}

// wantsBP reports whether l asked for back-pressure on topic and is not
// demoted.
func (l *link) wantsBP(topic string) bool {
	l.mu.Lock()
	bp := l.topics[topic]
	l.mu.Unlock()
	return bp && l.undemoted()
}

// undemoted reports whether no publish has waited for l in vain since its
// queue last drained.
func (l *link) undemoted() bool {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return !l.demoted
}

// pushWait is push, waiting for room until timer fires (expired then
// records it for the other waits of the same Publish), ctx ends or the
// link is cut; it reports whether m was queued, and whether l should be
// demoted.
func (l *link) pushWait(ctx context.Context, m *transport.Message, timer <-chan time.Time, expired *bool) (queued, demote bool, err error) {
	for {
		if l.push(m) {
			return true, false, nil
		}
		if *expired {
			return false, true, nil
		}
		l.qmu.Lock()
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room
		l.qmu.Unlock()
		select {
		case <-room:
		case <-timer:
			*expired = true
		case <-ctx.Done():
			return false, false, ctx.Err()
		case <-l.stop:
			return false, false, nil
		}
	}
}

type pending struct {
	router string
	ch     chan result // buffered 1; the first result wins
}

type result struct {
	msg *transport.Message
	err error
}

func (p *pending) finish(r result) {
	select {
	case p.ch <- r:
	default:
	}
}

// Listen registers the transport in its network.
func (t *Transport) Listen(h transport.Handler) (transport.Endpoint, error) {
	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return transport.Endpoint{}, transport.ErrClosed
	}
	if t.h != nil {
		return transport.Endpoint{}, fmt.Errorf("inproc: Listen called twice")
	}
	n.next++
	t.h = h
	t.ep = transport.Endpoint{
		Router: fmt.Sprintf("inproc:%d/router", n.next),
		Pub:    fmt.Sprintf("inproc:%d/pub", n.next),
	}
	n.nodes[t.ep.Router] = t
	n.nodes[t.ep.Pub] = t
	return t.ep, nil
}

func (n *Network) lookup(addr string) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[addr]
}

// Publish queues msg for every subscriber of msg.Name; a full queue drops
// for that subscriber only, unless opts.MaxWait is positive and the
// subscriber asked for back-pressure: Publish then waits for room in the
// queues of those, within one deadline for all of them (MaxWait after the
// call started) and until ctx ends, with the semantics of transport/zmq (a
// subscriber still full at the deadline misses the message and is demoted
// until its queue has drained to half). It costs O(subscribers of
// msg.Name).
func (t *Transport) Publish(ctx context.Context, msg *transport.Message, opts transport.PublishOptions) (transport.PublishResult, error) {
	var res transport.PublishResult
	if t.closed.Load() {
		return res, transport.ErrClosed
	}
	var waitBuf [8]*link
	waiting := waitBuf[:0]
	var payload []byte // one copy of the payload, shared by the subscribers
	var copies []transport.Message
	t.subsMu.RLock()
	links := t.byTopic[msg.Name]
	if len(links) > 0 {
		payload = msg.Payload
		if !msg.Exclusive {
			payload = bytes.Clone(payload) // the caller may reuse it
		}
		// A Message per subscriber: a handler may change the fields of the
		// one it gets.
		copies = make([]transport.Message, len(links))
	}
	for i, l := range links {
		m := &copies[i]
		*m = *msg
		m.Payload, m.Exclusive = payload, false
		res.Subscribers++
		if l.push(m) {
			continue
		}
		if opts.MaxWait > 0 && l.wantsBP(msg.Name) {
			waiting = append(waiting, l)
			continue
		}
		l.missed()
		res.Dropped++
	}
	t.subsMu.RUnlock() // not held while waiting: Subscribe and Close take it
	var err error
	if len(waiting) > 0 {
		timer := time.NewTimer(opts.MaxWait)
		expired := false
		for _, l := range waiting {
			queued, demote := false, false
			if err == nil {
				m := *msg
				m.Payload, m.Exclusive = payload, false
				queued, demote, err = l.pushWait(ctx, &m, timer.C, &expired)
			}
			if queued {
				continue
			}
			if demote {
				l.qmu.Lock()
				l.demoted, l.demotedAt = true, l.qbytes
				l.qmu.Unlock()
			}
			l.missed()
			res.Dropped++
		}
		timer.Stop()
	}
	t.dropped.Add(uint64(res.Dropped))
	return res, err
}

// setTopic adds topic to l (in) or removes it, in the publisher's index
// too; it reports whether l has topics left. The subscribing transport's
// mu is held (lock order: it, then pub.subsMu, then l.mu).
func (l *link) setTopic(topic string, in, bp bool) (left bool) {
	l.pub.subsMu.Lock()
	defer l.pub.subsMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	_, had := l.topics[topic]
	if _, linked := l.pub.subs[l]; linked && in {
		l.topics[topic] = bp // a second Subscribe replaces the options
		if !had {
			l.pub.byTopic[topic] = append(l.pub.byTopic[topic], l)
		}
	} else if !in && had {
		delete(l.topics, topic)
		l.pub.unindexLocked(topic, l)
	}
	return len(l.topics) > 0
}

// unindexLocked removes l from topic's subscribers; subsMu is held, so no
// Publish is reading the list.
func (t *Transport) unindexLocked(topic string, l *link) {
	ls := slices.DeleteFunc(t.byTopic[topic], func(x *link) bool { return x == l })
	if len(ls) == 0 {
		delete(t.byTopic, topic)
	} else {
		t.byTopic[topic] = ls
	}
}

// Subscribe subscribes to topic at the publisher pubAddr. A publisher that is
// not there (gone, or never existed) is not an error, as with sockets; no
// messages arrive from it.
func (t *Transport) Subscribe(pubAddr, topic string, opts transport.SubscribeOptions) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return transport.ErrClosed
	}
	l := t.out[pubAddr]
	if l == nil {
		pub := t.net.lookup(pubAddr)
		if pub == nil || pub.ep.Pub != pubAddr {
			return nil
		}
		l = &link{
			pub: pub, pubAddr: pubAddr, from: t.ep.Router,
			ready:  make(chan struct{}, 1),
			stop:   make(chan struct{}),
			topics: make(map[string]bool),
		}
		pub.subsMu.Lock()
		if pub.closed.Load() {
			pub.subsMu.Unlock()
			return nil
		}
		pub.subs[l] = struct{}{}
		pub.subsMu.Unlock()
		t.out[pubAddr] = l
		t.wg.Add(1)
		go t.deliver(l)
	}
	l.setTopic(topic, true, opts.BackPressure)
	return nil
}

func (t *Transport) deliver(l *link) {
	defer t.wg.Done()
	for {
		if m := l.pop(); m != nil {
			select {
			case <-l.stop: // cut: what is queued is not delivered
			default:
				t.h.HandlePublish(m)
				l.handed()
				continue
			}
		}
		select {
		case <-l.ready:
		case <-l.stop:
			if l.lostErr != nil {
				t.lost.Add(1)
				t.h.HandlePeerLost(l.pubAddr, l.lostErr)
			}
			return
		}
	}
}

// Unsubscribe withdraws topic; the link goes when it has no topic left.
func (t *Transport) Unsubscribe(pubAddr, topic string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return transport.ErrClosed
	}
	l := t.out[pubAddr]
	if l == nil {
		return nil
	}
	if !l.setTopic(topic, false, false) {
		t.cutLocked(l, nil)
	}
	return nil
}

// cutLocked removes l from both ends and stops its goroutine, which reports
// lost to the handler when it is not nil. t.mu is held.
func (t *Transport) cutLocked(l *link, lost error) {
	if t.out[l.pubAddr] != l {
		return
	}
	delete(t.out, l.pubAddr)
	l.pub.subsMu.Lock()
	delete(l.pub.subs, l)
	l.mu.Lock()
	for topic := range l.topics {
		l.pub.unindexLocked(topic, l)
	}
	l.mu.Unlock()
	l.pub.subsMu.Unlock()
	l.lostErr = lost
	close(l.stop)
}

// Request delivers msg to the router at routerAddr and waits for the reply.
func (t *Transport) Request(ctx context.Context, routerAddr string, msg *transport.Message) (*transport.Message, error) {
	target := t.net.lookup(routerAddr)
	if target == nil || target.ep.Router != routerAddr {
		return nil, fmt.Errorf("%w: no router at %s", transport.ErrPeerLost, routerAddr)
	}
	id := t.nextID.Add(1)
	p := &pending{router: routerAddr, ch: make(chan result, 1)}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return nil, transport.ErrClosed
	}
	t.pending[id] = p
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, id)
		t.mu.Unlock()
	}()

	req := *msg
	req.Header.RequestID = id
	if !msg.Exclusive {
		req.Payload = bytes.Clone(msg.Payload) // the handler may outlive this call
	}
	req.Exclusive = false
	rw := replyWriter{to: t, from: target} // a value: equal for every request on this pair, like a connection
	if !target.handleRequest(&req, rw) {
		return nil, fmt.Errorf("%w: %s closed", transport.ErrPeerLost, routerAddr)
	}
	select {
	case r := <-p.ch:
		return r.msg, r.err
	case <-ctx.Done():
		cancel := transport.Message{Name: msg.Name, Header: transport.Header{
			Kind: transport.KindCancel, Sender: msg.Header.Sender, RequestID: id,
		}}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel.Header.Status = transport.CancelDeadline
		}
		target.handleRequest(&cancel, rw)
		return nil, ctx.Err()
	}
}

// handleRequest hands msg to the handler unless t is closed.
func (t *Transport) handleRequest(msg *transport.Message, rw transport.ReplyWriter) bool {
	if t.closed.Load() {
		return false
	}
	t.mu.Lock()
	h := t.h
	t.mu.Unlock()
	if h == nil {
		return false
	}
	h.HandleRequest(msg, rw)
	return true
}

type replyWriter struct {
	to, from *Transport // requester, replier
}

func (w replyWriter) Reply(msg *transport.Message) error {
	if w.from.closed.Load() {
		return transport.ErrClosed
	}
	if w.to.closed.Load() {
		return transport.ErrPeerLost
	}
	w.to.mu.Lock()
	p := w.to.pending[msg.Header.RequestID]
	w.to.mu.Unlock()
	if p != nil {
		m := *msg // neither msg nor its payload is kept (transport.ReplyWriter)
		if !msg.Exclusive {
			m.Payload = bytes.Clone(msg.Payload)
		}
		m.Exclusive = false
		p.finish(result{msg: &m})
	}
	return nil // a reply to a request that has ended is dropped, as on the wire
}

// Disconnect fails requests in flight to addr and drops subscriptions to it.
func (t *Transport) Disconnect(addr string) {
	t.peerGone(addr, transport.ErrPeerLost, false)
}

// peerGone ends what t has with the node at addr. notify says whether to
// report a lost subscription link to the handler.
func (t *Transport) peerGone(addr string, err error, notify bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pending {
		if p.router == addr {
			p.finish(result{err: fmt.Errorf("%w: %s", err, addr)})
		}
	}
	if l := t.out[addr]; l != nil {
		var lost error
		if notify {
			lost = err
		}
		t.cutLocked(l, lost)
	}
}

// Stats returns the transport's counters, with one SubscriberStats per
// subscriber link (Remote is the subscriber's router address). It does not
// block.
func (t *Transport) Stats() transport.Stats {
	st := transport.Stats{SendDropped: t.dropped.Load(), PeersLost: t.lost.Load()}
	t.subsMu.RLock()
	defer t.subsMu.RUnlock()
	for l := range t.subs {
		s := transport.SubscriberStats{Remote: l.from, Dropped: l.dropped.Load()}
		l.mu.Lock()
		for _, bp := range l.topics {
			s.Topics++
			if bp {
				s.BackPressure++
			}
		}
		l.mu.Unlock()
		l.qmu.Lock()
		s.Queued, s.QueuedBytes, s.Slow = len(l.q)-l.head, l.qbytes, l.slow || l.demoted
		l.qmu.Unlock()
		st.Subscribers = append(st.Subscribers, s)
	}
	return st
}

// Close unregisters the transport: its requests in flight fail with
// ErrClosed, and its peers see it lost. Close waits for the transport's
// goroutines and is idempotent.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		t.wg.Wait()
		return nil
	}
	t.mu.Lock()
	for _, p := range t.pending {
		p.finish(result{err: transport.ErrClosed})
	}
	for _, l := range t.out {
		t.cutLocked(l, nil)
	}
	ep := t.ep
	t.mu.Unlock()

	n := t.net
	n.mu.Lock()
	var others []*Transport
	if ep.Router != "" {
		delete(n.nodes, ep.Router)
		delete(n.nodes, ep.Pub)
		for addr, o := range n.nodes {
			if addr == o.ep.Router {
				others = append(others, o)
			}
		}
	}
	n.mu.Unlock()
	for _, o := range others {
		o.peerGone(ep.Router, transport.ErrPeerLost, true)
		o.peerGone(ep.Pub, transport.ErrPeerLost, true)
	}
	t.wg.Wait()
	return nil
}

// InProcess reports true: nodes on this transport cannot send packets, so
// the COLUGO_DISCOVERY environment variable does not apply to them.
func (t *Transport) InProcess() bool { return true }

// Subscribers returns how many transports are subscribed to topic here.
func (t *Transport) Subscribers(topic string) int {
	t.subsMu.RLock()
	defer t.subsMu.RUnlock()
	return len(t.byTopic[topic])
}

var (
	_ transport.InProcessTransport = (*Transport)(nil)
	_ transport.SubscriberCounter  = (*Transport)(nil)
)
