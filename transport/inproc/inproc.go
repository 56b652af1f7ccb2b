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

	"github.com/colugo-go/colugo/transport"
)

// DefaultQueue is the default per-subscriber queue length, as in transport/zmq.
const DefaultQueue = 1024

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

// WithQueue sets the per-subscriber send queue length. Default: DefaultQueue.
// A subscriber that falls this far behind misses messages (counted in
// Stats().SendDropped).
func WithQueue(n int) Option { return queueOption(n) }

// New returns a transport on net. It does nothing until Listen.
func (n *Network) New(opts ...Option) *Transport {
	t := &Transport{
		net:      n,
		queueLen: DefaultQueue,
		subs:     make(map[*link]struct{}),
		byTopic:  make(map[string][]*link),
		out:      make(map[string]*link),
		pending:  make(map[uint64]*pending),
	}
	for _, o := range opts {
		o.apply(t)
	}
	if t.queueLen < 1 {
		t.queueLen = 1
	}
	return t
}

// Transport is an in-process transport.Transport.
//
// Lock order: a transport's mu before any transport's subsMu; never the
// other way, so that nodes subscribed to each other can close concurrently.
type Transport struct {
	net      *Network
	queueLen int
	h        transport.Handler
	ep       transport.Endpoint

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
	queue   chan *transport.Message
	stop    chan struct{} // closed once, under sub.mu, when the link is cut
	lostErr error         // set before stop closes when the publisher went away

	mu     sync.Mutex          // and pub.subsMu to change topics
	topics map[string]struct{} // exact topic names: inproc peers are all colugo nodes
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
// for that subscriber only. It costs O(subscribers of msg.Name).
func (t *Transport) Publish(ctx context.Context, msg *transport.Message, opts transport.PublishOptions) (transport.PublishResult, error) {
	var res transport.PublishResult
	if t.closed.Load() {
		return res, transport.ErrClosed
	}
	t.subsMu.RLock()
	defer t.subsMu.RUnlock()
	var payload []byte // one copy of the payload, shared by the subscribers
	for _, l := range t.byTopic[msg.Name] {
		if payload == nil {
			payload = msg.Payload
			if !msg.Exclusive {
				payload = bytes.Clone(payload) // the caller may reuse it
			}
		}
		// A Message per subscriber: a handler may change the fields of the
		// one it gets.
		m := *msg
		m.Payload, m.Exclusive = payload, false
		res.Subscribers++
		select {
		case l.queue <- &m:
		default:
			t.dropped.Add(1)
			res.Dropped++
		}
	}
	return res, nil
}

// setTopic adds topic to l (in) or removes it, in the publisher's index
// too; it reports whether l has topics left. The subscribing transport's
// mu is held (lock order: it, then pub.subsMu, then l.mu).
func (l *link) setTopic(topic string, in bool) (left bool) {
	l.pub.subsMu.Lock()
	defer l.pub.subsMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	_, had := l.topics[topic]
	if _, linked := l.pub.subs[l]; linked && in && !had {
		l.topics[topic] = struct{}{}
		l.pub.byTopic[topic] = append(l.pub.byTopic[topic], l)
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
			pub: pub, pubAddr: pubAddr,
			queue:  make(chan *transport.Message, pub.queueLen),
			stop:   make(chan struct{}),
			topics: make(map[string]struct{}),
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
	l.setTopic(topic, true)
	return nil
}

func (t *Transport) deliver(l *link) {
	defer t.wg.Done()
	for {
		select {
		case m := <-l.queue:
			t.h.HandlePublish(m)
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
	if !l.setTopic(topic, false) {
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

// Stats returns the transport's counters.
func (t *Transport) Stats() transport.Stats {
	return transport.Stats{SendDropped: t.dropped.Load(), PeersLost: t.lost.Load()}
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
