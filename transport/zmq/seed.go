package zmq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/colugo-go/colugo/transport"
)

// This file speaks the frames of the Python colugo (the seed; issue 17,
// shared/notes/seed-wire.md): one TCP socket per topic or service, one
// frame per message (the payload, nothing else) and REQ envelopes
// ([id, "", body]) on requests. It reuses the connections of the node's
// own traffic (handshake, framing and its limits, heartbeats, send queues,
// accepted-connection limits): only the roles (roleSeed*) and what a
// message means differ. libzmq greets as ZMTP 3.1 and negotiates down to
// this package's 3.0, so a seed SUB subscribes with the 3.0 data message
// "\x01" (a 3.1 SUBSCRIBE command is taken too).
//
// Every seed listener binds the transport's host (WithHost) on a port of
// its own, like the node's listeners: the seed dials the IPv4 address its
// discovery record announces, so the node must announce that host, and a
// transport on 127.0.0.1 (the default) is reachable by seed nodes on this
// host only. The listeners count against the transport's limits on
// accepted connections (WithMaxConns, WithMaxHandshakes) like its own.

var _ transport.SeedTransport = (*Transport)(nil)

// Seed defaults and bounds.
const (
	// DefaultSeedBudget is SeedServeOptions.Budget's default: below the
	// seed client's 2 s timer, with room for the reply to travel.
	DefaultSeedBudget = 1500 * time.Millisecond
	// DefaultSeedMaxInFlight and DefaultSeedMaxInFlightPerConn are the
	// defaults of SeedServeOptions' in-flight bounds.
	DefaultSeedMaxInFlight        = 256
	DefaultSeedMaxInFlightPerConn = 16
	// seedMaxEnvelope caps the envelope of one seed request (a libzmq REQ
	// sends 4 bytes): it is kept until the reply.
	seedMaxEnvelope = 1024
	// seedCloseFlush bounds how long SeedServer.Close waits for the error
	// replies it sends to leave.
	seedCloseFlush = 500 * time.Millisecond
)

var errSeedClosed = errors.New("seed socket closed")

// seedCounters are the seed fields of transport.Stats.
type seedCounters struct {
	notUTF8, sendDropped, recvDropped, errorReplies, overload atomic.Uint64
}

func (s *seedCounters) fill(st *transport.Stats) {
	st.SeedNotUTF8 = s.notUTF8.Load()
	st.SeedSendDropped = s.sendDropped.Load()
	st.SeedRecvDropped = s.recvDropped.Load()
	st.SeedErrorReplies = s.errorReplies.Load()
	st.SeedOverload = s.overload.Load()
}

// seedListener is a seed publisher or server: the owner of one listener in
// Transport.lns, to which serveInbound hands the connections it accepts.
// Its methods run with t.mu held.
type seedListener interface {
	openLocked() bool     // still accepting
	attachLocked(c *conn) // c is past its handshake
	detachLocked(c *conn) // c has ended
}

// seedConn is the seed state of a connection.
type seedConn struct {
	owner   seedListener // accepted: the publisher or server
	srv     *seedServer  // roleSeedRouterIn
	deliver func([]byte) // roleSeedSub
	// roleSeedRouterIn: requests being handled (srv.mu) and the key of
	// the connection in the handler budget.
	inflight int
	key      string
}

// seedListen binds a listener for owner on the transport's host and starts
// accepting connections of role r on it.
func (t *Transport) seedListen(owner seedListener, r role) (net.Listener, int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return nil, 0, transport.ErrClosed
	case t.h == nil:
		return nil, 0, errNotListening
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(t.ctx, "tcp", net.JoinHostPort(t.cfg.host, "0"))
	if err != nil {
		return nil, 0, fmt.Errorf("colugo/zmq: seed listen: %w", err)
	}
	// A closed seed listener keeps its slot: indices stay valid for the
	// connections that count against it, at a few words per listener.
	i := len(t.lns)
	t.lns = append(t.lns, ln)
	t.inByLn = append(t.inByLn, 0)
	t.lnSeed = append(t.lnSeed, owner)
	t.wg.Go(func() { t.acceptLoop(ln, i, r) })
	return ln, ln.Addr().(*net.TCPAddr).Port, nil
}

// seedDrop counts a message from a seed socket that was dropped.
func (c *conn) seedDrop(err error, frames [][]byte) {
	t := c.t
	t.seed.recvDropped.Add(1)
	t.log.Debug("zmq seed message dropped", keyPeer, c.addr, keyRole, c.role.String(), "frames", len(frames), keyErr, err)
}

// handleSeed dispatches one data message of a seed connection.
func (c *conn) handleSeed(frames [][]byte) {
	switch c.role {
	case roleSeedPubIn:
		if len(frames) == 1 && len(frames[0]) > 0 && frames[0][0] <= 1 {
			return // a (3.0) subscription: a seed SUB gets everything anyway
		}
		c.seedDrop(errors.New("not a subscription"), frames)
	case roleSeedSub:
		if len(frames) != 1 {
			c.seedDrop(fmt.Errorf("%d frames, want 1", len(frames)), frames)
			return
		}
		c.sc.deliver(frames[0]) // the last frame is its own buffer: deliver may keep it
	case roleSeedRouterIn:
		c.sc.srv.request(c, frames)
	case roleSeedDealer:
		id, body, ok := parseSeedReply(frames)
		if !ok {
			c.seedDrop(errors.New("not a reply [id8, \"\", body]"), frames)
			return
		}
		m := &transport.Message{Header: transport.Header{Kind: transport.KindReply, RequestID: id}, Payload: body, Exclusive: true}
		if !c.dl.deliver(m) {
			c.seedDrop(fmt.Errorf("reply %d: no request waits for it (late or duplicate)", id), frames)
		}
	}
}

// splitSeedRequest splits a request [envelope…, "", body…] at its first
// empty frame. ok is false without one, or when the envelope exceeds
// seedMaxEnvelope bytes.
func splitSeedRequest(frames [][]byte) (env, body [][]byte, ok bool) {
	n := 0
	for i, f := range frames {
		if len(f) == 0 {
			return frames[:i], frames[i+1:], true
		}
		if n += len(f); n > seedMaxEnvelope {
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// appendEnvelope appends the frames of env and the empty delimiter, each
// with MORE: what a reply to env starts with.
func appendEnvelope(b []byte, env [][]byte) []byte {
	for _, f := range env {
		b = appendFrameHeader(b, flagMore, len(f))
		b = append(b, f...)
	}
	return appendFrameHeader(b, flagMore, 0)
}

// parseSeedReply parses a reply to SeedRequest: [id8, "", body].
func parseSeedReply(frames [][]byte) (id uint64, body []byte, ok bool) {
	if len(frames) != 3 || len(frames[0]) != 8 || len(frames[1]) != 0 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(frames[0]), frames[2], true
}

// --- publisher ---

// seedPub is a SeedPublisher.
type seedPub struct {
	t    *Transport
	ln   net.Listener
	port int

	done  atomic.Bool
	conns atomic.Pointer[[]*conn] // copy on write under t.mu, for Publish

	closed bool               // t.mu
	set    map[*conn]struct{} // t.mu
}

// SeedPublisher listens, on a port of its own on the transport's host, for
// seed subscribers (ZMTP SUB or XSUB) of one topic, whose subscriptions it
// ignores: the seed subscribes to everything. It must be called after
// Listen; it returns transport.ErrClosed after Close. The transport's
// Close closes it too.
func (t *Transport) SeedPublisher() (transport.SeedPublisher, error) {
	p := &seedPub{t: t, set: make(map[*conn]struct{})}
	ln, port, err := t.seedListen(p, roleSeedPubIn)
	if err != nil {
		return nil, err
	}
	p.ln, p.port = ln, port
	return p, nil
}

func (p *seedPub) openLocked() bool { return !p.closed }

func (p *seedPub) attachLocked(c *conn) {
	c.sc = &seedConn{owner: p}
	p.set[c] = struct{}{}
	p.storeLocked()
}

func (p *seedPub) detachLocked(c *conn) {
	if _, ok := p.set[c]; ok {
		delete(p.set, c)
		p.storeLocked()
	}
}

func (p *seedPub) storeLocked() {
	if len(p.set) == 0 {
		p.conns.Store(nil)
		return
	}
	list := make([]*conn, 0, len(p.set))
	for c := range p.set {
		list = append(list, c)
	}
	p.conns.Store(&list)
}

func (p *seedPub) Port() int { return p.port }

// Publish queues payload as one frame for every connected seed subscriber
// without blocking: one whose send queue is full (WithSendQueue,
// WithSendQueueBytes, WithSendBudget) misses it, counted in dropped and
// in Stats().SeedSendDropped, and the others get it. It copies what it
// keeps of payload. It returns transport.ErrNotUTF8 (counted in
// Stats().SeedNotUTF8) for a payload that is not valid UTF-8, and
// transport.ErrClosed after Close.
func (p *seedPub) Publish(payload []byte) (sent, dropped int, err error) {
	t := p.t
	if p.done.Load() || t.closing.Load() {
		return 0, 0, transport.ErrClosed
	}
	if !utf8.Valid(payload) {
		t.seed.notUTF8.Add(1)
		return 0, 0, transport.ErrNotUTF8
	}
	conns := p.conns.Load()
	if conns == nil {
		return 0, 0, nil
	}
	var scratch [9]byte
	pre := appendFrameHeader(scratch[:0], 0, len(payload))
	ref := payloadRef{b: payload, held: &t.sendHeld} // one private copy at most, shared by the connections
	at := time.Now().UnixNano()
	for _, c := range *conns {
		if c.sendAt(pre, &ref, at) {
			sent++
			continue
		}
		dropped++
		c.missed("seed")
	}
	if dropped > 0 {
		t.seed.sendDropped.Add(uint64(dropped))
	}
	return sent, dropped, nil
}

func (p *seedPub) Subscribers() int {
	if conns := p.conns.Load(); conns != nil {
		return len(*conns)
	}
	return 0
}

// Close stops listening and closes the subscribers' connections, without
// waiting for what their queues hold. It is idempotent.
func (p *seedPub) Close() error {
	t := p.t
	t.mu.Lock()
	if p.closed {
		t.mu.Unlock()
		return nil
	}
	p.closed = true
	p.done.Store(true)
	conns := make([]*conn, 0, len(p.set))
	for c := range p.set {
		conns = append(conns, c)
	}
	clear(p.set)
	p.conns.Store(nil)
	t.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		c.close(errSeedClosed, true)
	}
	return nil
}

// --- subscriber ---

// seedSub is one SeedSubscribe: a redial loop and its connection.
type seedSub struct {
	addr    string
	ctx     context.Context //nolint:containedctx // the redial loop's lifetime
	cancel  context.CancelFunc
	deliver func([]byte)
	done    chan struct{} // closed when the loop has returned

	mu sync.Mutex
	c  *conn // nil while not connected
}

// SeedSubscribe dials the seed publisher at addr ("host:port") as a SUB,
// subscribes to everything (the ZMTP 3.0 message "\x01", as libzmq sends
// it to a 3.0 peer) and calls deliver with the payload of each one-frame
// message, from the connection's reader goroutine, in order; deliver may
// keep the payload, and blocking in it stops reading from that publisher.
// Messages of more than one frame are dropped (Stats().SeedRecvDropped).
// After a loss it redials, backing off from 50 ms to 2 s, until stop is
// called or the transport closes; losses count in Stats().PeersLost but
// are not reported to the Handler (the seed directory reports a seed
// publisher's end). stop closes the connection and waits for the loop and
// deliver to return; it is idempotent and must not be called from
// deliver. Frames are bounded by WithMaxFrameSize. It returns
// transport.ErrClosed after Close.
func (t *Transport) SeedSubscribe(addr string, deliver func(payload []byte)) (stop func(), err error) {
	if deliver == nil {
		return nil, errors.New("colugo/zmq: SeedSubscribe: nil deliver")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, transport.ErrClosed
	}
	ctx, cancel := context.WithCancel(t.ctx)
	s := &seedSub{addr: addr, ctx: ctx, cancel: cancel, deliver: deliver, done: make(chan struct{})}
	t.wg.Go(func() {
		defer close(s.done)
		t.runSeedSub(s)
	})
	return sync.OnceFunc(s.stop), nil
}

func (s *seedSub) stop() {
	s.cancel()
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c != nil {
		c.close(errors.New("unsubscribed"), true)
	}
	<-s.done
}

// runSeedSub dials, subscribes, reads, and again after a loss, until
// s.ctx ends.
func (t *Transport) runSeedSub(s *seedSub) {
	t.redial(s.ctx, s.addr, roleSeedSub, "seed subscribe", func(c *conn) bool {
		c.sc = &seedConn{deliver: s.deliver}
		if !t.startSeedSub(s, c) {
			return false
		}
		c.teardown(c.readLoop())
		s.mu.Lock()
		s.c = nil
		s.mu.Unlock()
		if c.deliberate || s.ctx.Err() != nil {
			return false
		}
		t.peersLost.Add(1)
		t.log.Info("zmq seed publisher lost", keyPeer, s.addr, keyErr, c.closeErr)
		return true
	})
}

// startSeedSub makes c the subscription's connection, queues the
// subscription to everything and starts the writer; false means the
// subscription or the transport is gone.
func (t *Transport) startSeedSub(s *seedSub, c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.closed || s.ctx.Err() != nil {
		_ = c.nc.Close()
		return false
	}
	t.conns[c] = struct{}{}
	s.c = c
	c.send(subMsg(true, ""), nil)
	t.wg.Go(c.writeLoop)
	return true
}

// --- server ---

// seedServer is a SeedServer.
type seedServer struct {
	t        *Transport
	ln       net.Listener
	port     int
	h        transport.SeedHandler
	budget   time.Duration
	errReply []byte
	maxAll   int
	maxConn  int
	ctx      context.Context //nolint:containedctx // the handlers' lifetime: Close cancels it
	cancel   context.CancelFunc

	closed bool               // t.mu
	set    map[*conn]struct{} // t.mu

	mu          sync.Mutex
	inflight    int // requests whose handler runs
	unanswered  int // requests not yet answered
	stopping    bool
	allAnswered chan struct{} // closed once stopping and all are answered
}

// seedReq is one request being handled.
type seedReq struct {
	c    *conn
	pre  []byte // the reply's envelope and delimiter frames
	body []byte
	held int64 // handler budget taken for body
}

// SeedServe listens, on a port of its own on the transport's host, for
// seed request clients (ZMTP REQ or DEALER) of one service. A request is
// [envelope…, "", body] (a libzmq REQ with REQ_CORRELATE sends a 4-byte
// id as its envelope, a plain REQ none); each is handled by h in a
// goroutine of its own, with a context that ends after opts.Budget (or
// when the server or the transport closes), and answered with
// [envelope…, "", reply]. It always answers, once, by the budget: with h's
// reply, or with opts.ErrorReply when h fails, panics, overruns the
// budget or replies with non-UTF-8 (Stats().SeedErrorReplies). A
// request without the empty delimiter frame (or with an envelope over
// 1 KiB) cannot be answered and is dropped (Stats().SeedRecvDropped); one
// with a body of other than one frame gets the error reply. A request
// over the in-flight bounds (opts.MaxInFlight, MaxInFlightPerConn) is
// answered at once with the error reply (Stats().SeedOverload), and a
// handler that overruns keeps its place in them until it returns; request
// bodies of 32 KiB or more also count against WithHandlerBudget. Pipelined
// requests (REQ_RELAXED) are each answered. It must be called after
// Listen; it returns an error wrapping transport.ErrNotUTF8 for an
// ErrorReply that is not valid UTF-8, an error wrapping ErrInvalidOption
// for a negative option, and transport.ErrClosed after Close. The
// transport's Close closes it and waits for its handlers, whose contexts
// it cancels.
func (t *Transport) SeedServe(h transport.SeedHandler, opts transport.SeedServeOptions) (transport.SeedServer, error) {
	switch {
	case h == nil:
		return nil, errors.New("colugo/zmq: SeedServe: nil handler")
	case !utf8.Valid(opts.ErrorReply):
		return nil, fmt.Errorf("colugo/zmq: SeedServe: error reply: %w", transport.ErrNotUTF8)
	case opts.Budget < 0 || opts.MaxInFlight < 0 || opts.MaxInFlightPerConn < 0:
		return nil, fmt.Errorf("%w: seed serve options %+v", ErrInvalidOption, opts)
	}
	s := &seedServer{
		t: t, h: h, budget: opts.Budget, errReply: append([]byte(nil), opts.ErrorReply...),
		maxAll: opts.MaxInFlight, maxConn: opts.MaxInFlightPerConn,
		set: make(map[*conn]struct{}), allAnswered: make(chan struct{}),
	}
	if s.budget == 0 {
		s.budget = DefaultSeedBudget
	}
	if s.maxAll == 0 {
		s.maxAll = DefaultSeedMaxInFlight
	}
	if s.maxConn == 0 {
		s.maxConn = DefaultSeedMaxInFlightPerConn
	}
	s.ctx, s.cancel = context.WithCancel(t.ctx)
	ln, port, err := t.seedListen(s, roleSeedRouterIn)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.ln, s.port = ln, port
	return s, nil
}

func (s *seedServer) openLocked() bool { return !s.closed }

func (s *seedServer) attachLocked(c *conn) {
	c.sc = &seedConn{owner: s, srv: s, key: "seed-" + randomHex(4)}
	s.set[c] = struct{}{}
}

func (s *seedServer) detachLocked(c *conn) { delete(s.set, c) }

func (s *seedServer) Port() int { return s.port }

// request handles one request, in c's reader goroutine.
func (s *seedServer) request(c *conn, frames [][]byte) {
	t := s.t
	env, body, ok := splitSeedRequest(frames)
	if !ok {
		c.seedDrop(errors.New("no empty delimiter frame within 1 KiB"), frames)
		return
	}
	r := &seedReq{c: c, pre: appendEnvelope(make([]byte, 0, 2*len(env)+2+8+seedEnvLen(env)), env)}
	if len(body) != 1 {
		t.seed.recvDropped.Add(1)
		t.seed.errorReplies.Add(1)
		s.send(r, s.errReply)
		return
	}
	r.body = body[0] // the last frame: its own buffer
	// The budget first: a reader waiting for it holds no place in flight,
	// which Close would wait for.
	if n := int64(len(r.body)); n >= holdMin {
		if t.hbud.take(c.sc.key, n, c.done, nil) != nil {
			return // the connection closed while waiting
		}
		r.held = n
	}
	if !s.admit(c) {
		if r.held > 0 {
			t.hbud.release(c.sc.key, r.held)
		}
		t.seed.overload.Add(1)
		t.seed.errorReplies.Add(1)
		s.send(r, s.errReply)
		return
	}
	t.wg.Go(func() { s.run(r) })
}

func seedEnvLen(env [][]byte) int {
	n := 0
	for _, f := range env {
		n += len(f)
	}
	return n
}

// admit counts a request in flight, if the bounds allow and the server
// is not closing.
func (s *seedServer) admit(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.inflight >= s.maxAll || c.sc.inflight >= s.maxConn {
		return false
	}
	s.inflight++
	c.sc.inflight++
	s.unanswered++
	return true
}

// answered counts a request answered.
func (s *seedServer) answered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unanswered--
	if s.stopping && s.unanswered == 0 {
		close(s.allAnswered)
	}
}

// release ends a request's place in flight, once its handler has returned.
func (s *seedServer) release(r *seedReq) {
	if r.held > 0 {
		s.t.hbud.release(r.c.sc.key, r.held)
	}
	s.mu.Lock()
	s.inflight--
	r.c.sc.inflight--
	s.mu.Unlock()
}

type seedResult struct {
	reply []byte
	err   error
}

// run handles r: it answers by the budget, then waits for the handler.
func (s *seedServer) run(r *seedReq) {
	defer s.release(r)
	t := s.t
	ctx, cancel := context.WithTimeout(s.ctx, s.budget)
	defer cancel()
	res := make(chan seedResult, 1)
	t.wg.Go(func() { res <- s.call(ctx, r.body) })
	var out seedResult
	got := false
	select {
	case out = <-res:
		got = true
	case <-ctx.Done():
	}
	reply := s.errReply
	switch {
	case !got:
		t.seed.errorReplies.Add(1)
		t.log.Debug("zmq seed handler overran its budget", keyPeer, r.c.addr, "budget", s.budget, keyErr, ctx.Err())
	case out.err != nil:
		t.seed.errorReplies.Add(1)
		t.log.Debug("zmq seed handler failed", keyPeer, r.c.addr, keyErr, out.err)
	case !utf8.Valid(out.reply):
		t.seed.notUTF8.Add(1)
		t.seed.errorReplies.Add(1)
		t.log.Debug("zmq seed handler replied with non-UTF-8", keyPeer, r.c.addr)
	default:
		reply = out.reply
	}
	s.send(r, reply)
	s.answered()
	if !got {
		<-res // its request stays in flight until the handler returns
	}
}

// call runs the handler, turning a panic into an error.
func (s *seedServer) call(ctx context.Context, body []byte) (out seedResult) {
	defer func() {
		if p := recover(); p != nil {
			s.t.log.Warn("zmq seed handler panicked", keyErr, p)
			out = seedResult{err: fmt.Errorf("seed handler panicked: %v", p)}
		}
	}()
	reply, err := s.h(ctx, body)
	return seedResult{reply: reply, err: err}
}

// send queues the reply to r without blocking.
func (s *seedServer) send(r *seedReq, reply []byte) {
	pre := appendFrameHeader(r.pre, 0, len(reply))
	if !r.c.enqueue(pre, payloadRef{b: reply, held: &s.t.sendHeld}, direct) {
		select {
		case <-r.c.done: // gone: nobody to answer
		default:
			s.t.seed.sendDropped.Add(1)
		}
	}
}

// Close stops listening, answers the requests in flight with the error
// reply (their handlers' contexts end), waits up to 500 ms for the
// replies to leave, and closes the connections. It does not wait for the
// handlers. It is idempotent.
func (s *seedServer) Close() error {
	t := s.t
	t.mu.Lock()
	if s.closed {
		t.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.set))
	for c := range s.set {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	_ = s.ln.Close()
	s.mu.Lock()
	s.stopping = true
	if s.unanswered == 0 {
		close(s.allAnswered)
	}
	s.mu.Unlock()
	s.cancel() // each run answers at once
	select {
	case <-s.allAnswered:
	case <-t.ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), seedCloseFlush)
	defer cancel()
	for _, c := range conns {
		_ = c.drained(ctx)
		c.close(errSeedClosed, true)
	}
	return nil
}

// --- requests ---

// SeedRequest sends payload to the seed reply server at addr ("host:port")
// as [id8, "", payload] and waits for the reply [id8, "", reply] with the
// same id, until ctx ends: the seed has no deadline on the wire, so ctx's
// is enforced here. Requests to one server share one connection, dialled
// on first use (bounded by ctx and the handshake timeout), and may be in
// flight together; a libzmq REP answers them in order. A reply that no
// request waits for any more (late, or a duplicate) is dropped
// (Stats().SeedRecvDropped). A server that never answers delays only its
// own callers. It does not keep payload. Errors: transport.ErrNotUTF8
// for a payload that is not valid UTF-8 (counted in Stats().SeedNotUTF8;
// the seed cannot read it), ctx's error, an error wrapping
// transport.ErrPeerLost when the server cannot be reached or its
// connection dies or SeedDisconnect closes it first, transport.ErrClosed
// after Close.
func (t *Transport) SeedRequest(ctx context.Context, addr string, payload []byte) ([]byte, error) {
	if t.closing.Load() {
		return nil, transport.ErrClosed
	}
	if !utf8.Valid(payload) {
		t.seed.notUTF8.Add(1)
		return nil, transport.ErrNotUTF8
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := t.nextID.Add(1)
	cl := callPool.Get().(*call)
	d, waiting, err := t.registerCall(ctx, addr, true, id, cl)
	if err != nil {
		return nil, err
	}
	var scratch [32]byte
	pre := appendFrameHeader(scratch[:0], flagMore, 8)
	pre = binary.BigEndian.AppendUint64(pre, id)
	pre = appendFrameHeader(pre, flagMore, 0)
	pre = appendFrameHeader(pre, 0, len(payload))
	if err := d.c.sendWait(ctx, pre, payloadRef{b: payload}, directIf(waiting == 1)); err != nil && ctx.Err() != nil {
		d.forget(id, cl)
		return nil, ctx.Err()
	} // else if the connection closed, its teardown fails the call
	select {
	case r := <-cl.ch:
		callPool.Put(cl)
		if r.err != nil {
			return nil, r.err
		}
		return r.msg.Payload, nil
	case <-ctx.Done():
		d.forget(id, cl)
		return nil, ctx.Err()
	}
}

// SeedDisconnect closes the connection to the seed reply server at addr,
// if any: its requests in flight fail with an error wrapping
// transport.ErrPeerLost. The next SeedRequest to addr dials again. It does
// not wait for the connection's goroutines.
func (t *Transport) SeedDisconnect(addr string) {
	t.mu.Lock()
	d := t.seedDealers[addr]
	if d != nil {
		delete(t.seedDealers, addr)
	}
	t.mu.Unlock()
	if d == nil {
		return
	}
	d.fail(fmt.Errorf("%w: %s: disconnected", transport.ErrPeerLost, addr))
	if c := d.conn(); c != nil {
		c.close(errors.New("disconnected"), true)
	}
}
