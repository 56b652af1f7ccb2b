package transport_test

// This file is a transport written from outside the module's internals, as
// a third party would write one: it imports only the public packages
// transport, transport/wire and transport/transporttest, encodes every
// message into the three frames of the wire format (name, header,
// payload), carries the frames over in-memory connections and decodes them
// on the other side. It passes the conformance suite, except the cases
// that need a small send queue (it has no queue option).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
	"github.com/colugo-go/colugo/transport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOutsideTransportConformance(t *testing.T) {
	net := &pipeNet{nodes: map[string]*pipeTransport{}}
	transporttest.Run(t, func(testing.TB) transport.Transport { return &pipeTransport{net: net} })
}

// TestOutsideTransportDecodes checks that what crosses a pipe really is the
// wire encoding: a frame that is not a header is refused and counted.
func TestOutsideTransportDecodes(t *testing.T) {
	t.Parallel()
	if _, err := decode(frames{wire.AppendName(nil, "t"), []byte{0xC1, 0xFF}, nil}); !errors.Is(err, wire.ErrShort) && !errors.Is(err, wire.ErrKind) {
		t.Fatalf("decode of a broken header: %v, want a wire error", err)
	}
	h := transport.Header{Kind: transport.KindPublish, Codec: "raw", Sender: "a", Seq: 7}
	m, err := decode(frames{wire.AppendName(nil, "t"), h.Append(nil), []byte("x")})
	if err != nil || m.Name != "t" || m.Header != h || string(m.Payload) != "x" {
		t.Fatalf("decode = %+v, %v", m, err)
	}
}

// frames are one message on the wire: name frame, header, payload.
type frames [3][]byte

func encode(msg *transport.Message, h transport.Header) (frames, error) {
	if err := wire.CheckName(msg.Name); err != nil {
		return frames{}, err
	}
	return frames{wire.AppendName(nil, msg.Name), h.Append(nil), append([]byte(nil), msg.Payload...)}, nil
}

func decode(f frames) (transport.Message, error) {
	name, err := wire.ParseName(f[0])
	if err != nil {
		return transport.Message{}, err
	}
	h, err := wire.Decode(f[1])
	if err != nil {
		return transport.Message{}, err
	}
	return transport.Message{Name: name, Header: h, Payload: f[2], Exclusive: true}, nil
}

// pipeNet is an in-memory network: the transports of one test, by address.
type pipeNet struct {
	mu    sync.Mutex
	n     int
	nodes map[string]*pipeTransport
}

func (n *pipeNet) lookup(addr string) *pipeTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[addr]
}

type pipeTransport struct {
	net      *pipeNet
	h        transport.Handler
	ep       transport.Endpoint
	nextID   atomic.Uint64
	dropped  atomic.Uint64
	refused  atomic.Uint64
	lostPeer atomic.Uint64
	wg       sync.WaitGroup

	mu            sync.Mutex
	closed        bool
	subscribers   map[*subConn]bool   // peers subscribed to this transport
	subscriptions map[string]*subConn // this transport's subscriptions, by publisher address
	clients       map[string]*reqConn // outbound request connections, by router address
	servers       map[*reqConn]bool   // inbound request connections
}

func (t *pipeTransport) Listen(h transport.Handler) (transport.Endpoint, error) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	t.net.n++
	t.h = h
	t.ep = transport.Endpoint{Router: fmt.Sprintf("pipe:%d/router", t.net.n), Pub: fmt.Sprintf("pipe:%d/pub", t.net.n)}
	t.subscribers, t.subscriptions = map[*subConn]bool{}, map[string]*subConn{}
	t.clients, t.servers = map[string]*reqConn{}, map[*reqConn]bool{}
	t.net.nodes[t.ep.Router], t.net.nodes[t.ep.Pub] = t, t
	return t.ep, nil
}

// subConn is one subscriber's connection to one publisher.
type subConn struct {
	pub, sub *pipeTransport
	addr     string
	q        chan frames
	done     chan struct{}
	once     sync.Once
	lost     error // set before done closes: why the connection ended (nil: on purpose)

	mu     sync.Mutex
	topics map[string]bool
}

func (c *subConn) shut(lost error) {
	c.once.Do(func() { c.lost = lost; close(c.done) })
}

func (c *subConn) wants(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic := range c.topics {
		if strings.HasPrefix(name+"\x00", topic+"\x00") {
			return true
		}
	}
	return false
}

func (t *pipeTransport) Publish(ctx context.Context, msg *transport.Message, _ transport.PublishOptions) (transport.PublishResult, error) {
	f, err := encode(msg, msg.Header)
	if err != nil {
		return transport.PublishResult{}, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return transport.PublishResult{}, transport.ErrClosed
	}
	var to []*subConn
	for c := range t.subscribers {
		if c.wants(msg.Name) {
			to = append(to, c)
		}
	}
	t.mu.Unlock()
	res := transport.PublishResult{Subscribers: len(to)}
	for i, c := range to {
		if i > 0 { // each connection gets its own payload
			f[2] = append([]byte(nil), f[2]...)
		}
		select {
		case c.q <- f:
		default:
			res.Dropped++
			t.dropped.Add(1)
		}
	}
	return res, nil
}

func (t *pipeTransport) Subscribe(pubAddr, topic string, _ transport.SubscribeOptions) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return transport.ErrClosed
	}
	if c := t.subscriptions[pubAddr]; c != nil {
		c.mu.Lock()
		c.topics[topic] = true
		c.mu.Unlock()
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	pub := t.net.lookup(pubAddr)
	if pub == nil {
		return nil // nobody listens there (yet); this transport does not redial
	}
	c := &subConn{pub: pub, sub: t, addr: pubAddr, q: make(chan frames, 1<<17), done: make(chan struct{}), topics: map[string]bool{topic: true}}
	pub.mu.Lock()
	if pub.closed {
		pub.mu.Unlock()
		return nil
	}
	pub.subscribers[c] = true
	pub.mu.Unlock()
	t.mu.Lock()
	if t.closed || t.subscriptions[pubAddr] != nil { // closed, or lost a race with another Subscribe
		t.mu.Unlock()
		c.shut(nil)
		pub.forgetSubscriber(c)
		if t.closed {
			return transport.ErrClosed
		}
		return t.Subscribe(pubAddr, topic, transport.SubscribeOptions{})
	}
	t.subscriptions[pubAddr] = c
	t.wg.Add(1)
	t.mu.Unlock()
	go t.deliver(c)
	return nil
}

func (t *pipeTransport) forgetSubscriber(c *subConn) {
	t.mu.Lock()
	delete(t.subscribers, c)
	t.mu.Unlock()
}

// deliver decodes what arrives on c and hands it to the handler.
func (t *pipeTransport) deliver(c *subConn) {
	defer t.wg.Done()
	for {
		select {
		case f := <-c.q:
			msg, err := decode(f)
			if err != nil {
				t.refused.Add(1)
				continue
			}
			t.h.HandlePublish(&msg)
		case <-c.done:
			t.mu.Lock()
			if t.subscriptions[c.addr] == c {
				delete(t.subscriptions, c.addr)
			}
			t.mu.Unlock()
			if c.lost != nil {
				t.lostPeer.Add(1)
				t.h.HandlePeerLost(c.addr, c.lost)
			}
			return
		}
	}
}

func (t *pipeTransport) Unsubscribe(pubAddr, topic string) error {
	t.mu.Lock()
	c := t.subscriptions[pubAddr]
	if c == nil {
		t.mu.Unlock()
		return nil
	}
	c.mu.Lock()
	delete(c.topics, topic)
	empty := len(c.topics) == 0
	c.mu.Unlock()
	if empty {
		delete(t.subscriptions, pubAddr)
	}
	t.mu.Unlock()
	if empty {
		c.shut(nil)
		c.pub.forgetSubscriber(c)
	}
	return nil
}

// reqConn is one requester's connection to one router.
type reqConn struct {
	cli, srv *pipeTransport
	addr     string
	toSrv    chan frames
	toCli    chan frames
	done     chan struct{}
	once     sync.Once
	err      error // set before done closes: what requests in flight fail with

	mu      sync.Mutex
	pending map[uint64]chan *transport.Message
}

func (c *reqConn) shut(err error) {
	c.once.Do(func() { c.err = err; close(c.done) })
}

// replyWriter is comparable and equal for requests of one connection.
type replyWriter struct{ c *reqConn }

func (w replyWriter) Done() <-chan struct{} { return w.c.done }

func (w replyWriter) Reply(msg *transport.Message) error {
	select {
	case <-w.c.done:
		w.c.srv.mu.Lock()
		closed := w.c.srv.closed
		w.c.srv.mu.Unlock()
		if closed {
			return transport.ErrClosed
		}
		return transport.ErrPeerLost
	default:
	}
	f, err := encode(msg, msg.Header)
	if err != nil {
		return err
	}
	select {
	case w.c.toCli <- f:
		return nil
	default:
		return transport.ErrQueueFull
	}
}

var _ transport.ConnWatcher = replyWriter{}

func (t *pipeTransport) clientConn(addr string) (*reqConn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, transport.ErrClosed
	}
	if c := t.clients[addr]; c != nil {
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	srv := t.net.lookup(addr)
	if srv == nil {
		return nil, transport.ErrUnknownPeer
	}
	c := &reqConn{cli: t, srv: srv, addr: addr, toSrv: make(chan frames, 4096), toCli: make(chan frames, 4096),
		done: make(chan struct{}), pending: map[uint64]chan *transport.Message{}}
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil, transport.ErrUnknownPeer
	}
	srv.servers[c] = true
	srv.wg.Add(1)
	srv.mu.Unlock()
	go srv.serve(c)
	t.mu.Lock()
	if t.closed || t.clients[addr] != nil {
		t.mu.Unlock()
		c.shut(transport.ErrClosed)
		if t.closed {
			return nil, transport.ErrClosed
		}
		return t.clientConn(addr)
	}
	t.clients[addr] = c
	t.wg.Add(1)
	t.mu.Unlock()
	go t.readReplies(c)
	return c, nil
}

// serve decodes the requests arriving on c for this transport's handler.
func (t *pipeTransport) serve(c *reqConn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.servers, c)
		t.mu.Unlock()
	}()
	for {
		select {
		case f := <-c.toSrv:
			msg, err := decode(f)
			if err != nil {
				t.refused.Add(1)
				continue
			}
			t.h.HandleRequest(&msg, replyWriter{c})
		case <-c.done:
			return
		}
	}
}

// readReplies routes the replies arriving on c to their requests.
func (t *pipeTransport) readReplies(c *reqConn) {
	defer t.wg.Done()
	for {
		select {
		case f := <-c.toCli:
			msg, err := decode(f)
			if err != nil || msg.Header.Kind != transport.KindReply {
				t.refused.Add(1)
				continue
			}
			c.mu.Lock()
			ch := c.pending[msg.Header.RequestID]
			delete(c.pending, msg.Header.RequestID)
			c.mu.Unlock()
			if ch != nil {
				ch <- &msg
			}
		case <-c.done:
			t.mu.Lock()
			if t.clients[c.addr] == c {
				delete(t.clients, c.addr)
			}
			t.mu.Unlock()
			if errors.Is(c.err, transport.ErrPeerLost) {
				t.lostPeer.Add(1)
				t.h.HandlePeerLost(c.addr, c.err)
			}
			return
		}
	}
}

func (t *pipeTransport) Request(ctx context.Context, routerAddr string, msg *transport.Message) (*transport.Message, error) {
	c, err := t.clientConn(routerAddr)
	if err != nil {
		return nil, err
	}
	h := msg.Header
	h.RequestID = t.nextID.Add(1)
	f, err := encode(msg, h)
	if err != nil {
		return nil, err
	}
	ch := make(chan *transport.Message, 1)
	c.mu.Lock()
	c.pending[h.RequestID] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, h.RequestID)
		c.mu.Unlock()
	}
	select {
	case c.toSrv <- f:
	case <-c.done:
		forget()
		return nil, c.err
	default:
		forget()
		return nil, transport.ErrQueueFull
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.done:
		forget()
		return nil, c.err
	case <-ctx.Done():
		forget()
		cancel := transport.Header{Kind: transport.KindCancel, Sender: h.Sender, RequestID: h.RequestID}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel.Status = transport.CancelDeadline
		}
		if f, err := encode(&transport.Message{Name: msg.Name}, cancel); err == nil {
			select {
			case c.toSrv <- f:
			default: // the replier is not reading: its handler runs to its own deadline
			}
		}
		return nil, ctx.Err()
	}
}

func (t *pipeTransport) Disconnect(addr string) {
	t.mu.Lock()
	rc, sc := t.clients[addr], t.subscriptions[addr]
	delete(t.clients, addr)
	delete(t.subscriptions, addr)
	t.mu.Unlock()
	if rc != nil {
		rc.shut(transport.ErrPeerLost)
	}
	if sc != nil {
		sc.shut(nil)
		sc.pub.forgetSubscriber(sc)
	}
}

func (t *pipeTransport) Stats() transport.Stats {
	return transport.Stats{SendDropped: t.dropped.Load(), RecvDropped: t.refused.Load(), PeersLost: t.lostPeer.Load()}
}

func (t *pipeTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	// Copies: the connections' goroutines delete themselves from the maps.
	subscribers, subscriptions := maps.Clone(t.subscribers), maps.Clone(t.subscriptions)
	clients, servers := maps.Clone(t.clients), maps.Clone(t.servers)
	t.mu.Unlock()
	t.net.mu.Lock()
	delete(t.net.nodes, t.ep.Router)
	delete(t.net.nodes, t.ep.Pub)
	t.net.mu.Unlock()
	for c := range subscribers {
		c.shut(transport.ErrPeerLost) // the subscriber's publisher is gone
	}
	for _, c := range subscriptions {
		c.shut(nil)
		c.pub.forgetSubscriber(c)
	}
	for _, c := range clients {
		c.shut(transport.ErrClosed)
	}
	for c := range servers {
		c.shut(transport.ErrPeerLost) // the requester's replier is gone
	}
	t.wg.Wait()
	return nil
}
