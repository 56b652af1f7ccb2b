package zmq

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// dealer is this transport's one connection to a remote router: requests
// share it and are matched to replies by RequestID, never in lockstep.
type dealer struct {
	t     *Transport
	addr  string
	seed  bool          // to a seed reply server (seed.go): in t.seedDealers
	ready chan struct{} // closed once the dial is over
	c     *conn         // set before ready closes; nil when the dial failed
	err   error         // the dial's error, set before ready closes

	mu      sync.Mutex
	pending map[uint64]*call
	lost    error // set once the connection is gone: new calls are refused
}

type call struct{ ch chan result } // one slot: exactly one result is sent

type result struct {
	msg *transport.Message
	err error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan result, 1)} }}

// conn returns the dealer's connection, or nil while it is being dialled.
func (d *dealer) conn() *conn {
	select {
	case <-d.ready:
		return d.c
	default:
		return nil
	}
}

// register adds cl as waiting for id, unless the connection is gone, and
// returns how many calls are now waiting.
func (d *dealer) register(id uint64, cl *call) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost != nil {
		return 0, d.lost
	}
	d.pending[id] = cl
	return len(d.pending), nil
}

// forget withdraws cl and returns it to the pool, taking the result that
// deliver or fail may be sending to it at that moment.
func (d *dealer) forget(id uint64, cl *call) {
	d.mu.Lock()
	mine := d.pending[id] == cl
	if mine {
		delete(d.pending, id)
	}
	d.mu.Unlock()
	if !mine {
		<-cl.ch
	}
	callPool.Put(cl)
}

// deliver hands a reply to the request waiting for it; a reply to a request
// that has ended is dropped, as libzmq would, and deliver reports false.
func (d *dealer) deliver(msg *transport.Message) bool {
	id := msg.Header.RequestID
	d.mu.Lock()
	cl := d.pending[id]
	delete(d.pending, id)
	d.mu.Unlock()
	if cl != nil {
		cl.ch <- result{msg: msg}
	}
	return cl != nil
}

// dealerMap is where dealers of d's kind are kept; t.mu is held.
func (t *Transport) dealerMap(seed bool) map[string]*dealer {
	if seed {
		return t.seedDealers
	}
	return t.dealers
}

// fail ends every request in flight with err and refuses new ones.
func (d *dealer) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lost == nil {
		d.lost = err
	}
	for id, cl := range d.pending {
		cl.ch <- result{err: err}
		delete(d.pending, id)
	}
}

// dealerFor returns the connected dealer for addr, dialling it (bounded by
// ctx) when there is none. Concurrent callers wait for one dial.
func (t *Transport) dealerFor(ctx context.Context, addr string, seed bool) (*dealer, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, transport.ErrClosed
		}
		m := t.dealerMap(seed)
		d := m[addr]
		if d == nil {
			d = &dealer{t: t, addr: addr, seed: seed, ready: make(chan struct{}), pending: make(map[uint64]*call)}
			m[addr] = d
			t.mu.Unlock()
			return d, t.dialDealer(ctx, d)
		}
		t.mu.Unlock()
		select {
		case <-d.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.err == nil {
			return d, nil
		}
		if ctx.Err() == nil && (errors.Is(d.err, context.DeadlineExceeded) || errors.Is(d.err, context.Canceled)) {
			continue // the dialling caller's ctx ended, not ours: dial again
		}
		return nil, d.err
	}
}

// dialDealer dials d and starts its goroutines, or records why not.
func (t *Transport) dialDealer(ctx context.Context, d *dealer) error {
	defer close(d.ready)
	r := roleDealer
	if d.seed {
		r = roleSeedDealer
	}
	c, err := t.dial(ctx, d.addr, r)
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.dealerMap(d.seed)
	switch {
	case t.closed:
		err = transport.ErrClosed
	case m[d.addr] != d:
		err = fmt.Errorf("%w: %s: disconnected", transport.ErrPeerLost, d.addr)
	case err != nil && ctx.Err() != nil:
		err = ctx.Err()
	case err != nil:
		err = fmt.Errorf("%w: %s: %w", transport.ErrPeerLost, d.addr, err)
	}
	if err != nil {
		if c != nil {
			_ = c.nc.Close()
		}
		if m[d.addr] == d {
			delete(m, d.addr)
		}
		d.err = err
		d.mu.Lock() // Close may be failing d's (empty) pending set right now
		d.lost = err
		d.mu.Unlock()
		return err
	}
	d.c = c
	c.dl = d
	if d.seed {
		c.sc = &seedConn{}
	}
	t.conns[c] = struct{}{}
	t.wg.Go(c.writeLoop)
	t.wg.Go(func() { t.runDealer(d, c) })
	return nil
}

// runDealer is the reader goroutine of a dealer connection.
func (t *Transport) runDealer(d *dealer, c *conn) {
	c.teardown(c.readLoop())
	t.mu.Lock()
	if m := t.dealerMap(d.seed); m[d.addr] == d {
		delete(m, d.addr)
	}
	h := t.h
	t.mu.Unlock()
	err := c.lostErr()
	d.fail(err)
	if !c.deliberate {
		t.peersLost.Add(1)
		t.log.Info("zmq router lost", keyPeer, d.addr, keyRole, c.role.String(), keyErr, c.closeErr)
		if h != nil && !d.seed { // seed servers come from the seed directory, which reports their loss
			h.HandlePeerLost(d.addr, err)
		}
	}
}

// Request sends msg (its Kind defaults to request) to the router at
// routerAddr and blocks until the reply, ctx's end, the connection's loss
// or Close. The connection to routerAddr is dialled on first use (bounded by
// ctx and the handshake timeout) and shared by every request to it; many
// requests may be in flight at once. The transport sets the RequestID of
// the copy it sends; msg is not modified, and its payload must not be
// modified until Request returns.
//
// Errors: ctx.Err() when ctx ends first (the replier then gets a
// KindCancel with the request's id, best effort); an error wrapping
// transport.ErrPeerLost when the router cannot be reached or its connection
// dies first (the next Request dials again); transport.ErrClosed after
// Close; an error wrapping wire.ErrName for an invalid name.
func (t *Transport) Request(ctx context.Context, routerAddr string, msg *transport.Message) (*transport.Message, error) {
	if t.closing.Load() {
		return nil, transport.ErrClosed
	}
	if err := wire.CheckName(msg.Name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := t.nextID.Add(1)
	cl := callPool.Get().(*call)
	d, waiting, err := t.registerCall(ctx, routerAddr, false, id, cl)
	if err != nil {
		return nil, err
	}
	h := msg.Header
	h.RequestID = id
	if h.Kind == 0 {
		h.Kind = transport.KindRequest
	}
	var scratch [256]byte
	ext := d.c.ext.Load()
	if h.Ext != "" && !ext {
		d.c.t.extStripped.Add(1)
	}
	pre := appendPrefix(scratch[:0], msg.Name, &h, transport.KindRequest, len(msg.Payload), ext)
	// A lone request is written at once from this goroutine, for latency;
	// with others in flight, the writer goroutine coalesces them into
	// fewer system calls, for throughput.
	if err := d.c.sendWait(ctx, pre, payloadRef{b: msg.Payload, owned: msg.Exclusive}, directIf(waiting == 1)); err != nil {
		if ctx.Err() != nil {
			d.forget(id, cl)
			return nil, ctx.Err()
		}
		// The connection closed: its reader's teardown fails the call.
	}
	select {
	case r := <-cl.ch:
		callPool.Put(cl)
		return r.msg, r.err
	case <-ctx.Done():
		d.forget(id, cl)
		ch := wire.Header{Kind: transport.KindCancel, Codec: msg.Header.Codec, Sender: msg.Header.Sender, RequestID: id}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			ch.Status = transport.CancelDeadline
		}
		_ = d.c.sendNow(appendPrefix(scratch[:0], msg.Name, &ch, transport.KindCancel, 0, false), nil)
		return nil, ctx.Err()
	}
}

// registerCall registers cl under id with the dealer of addr (seed: a
// seed reply server's), dialling when there is none, and returns it with
// the number of calls now waiting on it. A connection that dies between
// lookup and registration has sent nothing, so it dials again unless ctx
// ended or the transport closed; on error cl is back in callPool.
func (t *Transport) registerCall(ctx context.Context, addr string, seed bool, id uint64, cl *call) (*dealer, int, error) {
	for {
		d, err := t.dealerFor(ctx, addr, seed)
		if err != nil {
			callPool.Put(cl)
			return nil, 0, err
		}
		waiting, err := d.register(id, cl)
		if err == nil {
			return d, waiting, nil
		}
		if errors.Is(err, transport.ErrClosed) || ctx.Err() != nil {
			callPool.Put(cl)
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			return nil, 0, err
		}
	}
}

// routerPeer is the ReplyWriter of one requester connection.
type routerPeer struct {
	c *conn
	// open counts requests received and not yet answered (approximately:
	// a request never answered stays counted). Above one, replies go
	// through the writer goroutine, which coalesces them.
	open atomic.Int64

	// The requests held by handlers, for the handler budget (see hold).
	key  string // this connection's key in the handler budget
	mu   sync.Mutex
	held map[uint64]*heldReq // by RequestID; requests reusing an id chain
}

// heldReq is a request's charge against the handler budget. It is
// released once, by whichever comes first: its reply, or the garbage
// collector finding its payload unreachable (a handler that ends without
// replying). Not when the connection ends: its handlers may still run.
type heldReq struct {
	rp   *routerPeer
	n    int64
	next *heldReq // an older request with the same id
	done atomic.Bool
}

func (h *heldReq) release() {
	if h.done.CompareAndSwap(false, true) {
		h.rp.c.t.hbud.release(h.rp.key, h.n)
	}
}

// holdMin is the smallest payload counted by the handler budget: smaller
// requests cost less than their bookkeeping would (three allocations), and
// how many run at once is the node's handler limit's business.
const holdMin = recvFree

// nudgeEvery is how long a reader waits for handler budget before it asks
// for a garbage collection, which releases the charges of requests whose
// handlers ended without replying (their cleanups); at most one per
// nudgeEvery per process.
const nudgeEvery = time.Second

var lastNudge atomic.Int64

func gcNudge() {
	now := time.Now().UnixNano()
	if last := lastNudge.Load(); now-last >= int64(nudgeEvery) && lastNudge.CompareAndSwap(last, now) {
		runtime.GC()
	}
}

// hold charges a request's payload to the handler budget before it is
// delivered, waiting (the connection reads nothing meanwhile) until it
// fits; false means the connection closed while waiting.
func (p *routerPeer) hold(id uint64, payload []byte) bool {
	if len(payload) < holdMin {
		return true
	}
	t := p.c.t
	if p.key == "" {
		p.key = strconv.FormatUint(t.nextID.Add(1), 10)
	}
	n := int64(len(payload))
	if t.hbud.take(p.key, n, p.c.done, gcNudge) != nil {
		return false
	}
	h := &heldReq{rp: p, n: n}
	p.mu.Lock()
	if p.held == nil {
		p.held = make(map[uint64]*heldReq)
	}
	h.next = p.held[id]
	p.held[id] = h
	p.mu.Unlock()
	runtime.AddCleanup(&payload[0], (*heldReq).release, h)
	return true
}

// unhold releases the charge of the newest request with id, on its
// reply.
func (p *routerPeer) unhold(id uint64) {
	p.mu.Lock()
	h := p.held[id]
	if h != nil {
		if h.next != nil {
			p.held[id] = h.next
		} else {
			delete(p.held, id)
		}
	}
	p.mu.Unlock()
	if h != nil {
		h.release()
	}
}

// Done is closed when the requester's connection is gone: its handlers'
// replies can no longer arrive.
func (p *routerPeer) Done() <-chan struct{} { return p.c.done }

// Reply queues msg (its Kind defaults to reply) for the requester without
// blocking. It returns transport.ErrQueueFull when the requester's queue is
// full (counted in Stats().SendDropped), transport.ErrPeerLost when its
// connection is gone, transport.ErrClosed after Close.
func (p *routerPeer) Reply(msg *transport.Message) error {
	c := p.c
	p.unhold(msg.Header.RequestID) // the handler is done with it, whatever becomes of the reply
	if c.t.closing.Load() {
		return transport.ErrClosed
	}
	select {
	case <-c.done:
		return transport.ErrPeerLost
	default:
	}
	if err := wire.CheckName(msg.Name); err != nil {
		return err
	}
	var scratch [256]byte
	ext := c.ext.Load()
	if msg.Header.Ext != "" && !ext {
		c.t.extStripped.Add(1)
	}
	pre := appendPrefix(scratch[:0], msg.Name, &msg.Header, transport.KindReply, len(msg.Payload), ext)
	n := p.open.Add(-1)
	if n < 0 { // a reply to a request not counted (a cancelled one): resync
		p.open.CompareAndSwap(n, 0)
	}
	busy := n > 0
	pr := payloadRef{b: msg.Payload, owned: msg.Exclusive, held: &c.t.sendHeld}
	if !c.enqueueAt(pre, &pr, directIf(!busy), 0) {
		c.t.sendDropped.Add(1)
		return transport.ErrQueueFull
	}
	return nil
}
