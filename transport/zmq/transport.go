package zmq

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Redial backoff of subscriptions.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

var (
	errNotListening = errors.New("colugo/zmq: Listen has not been called")
	errListenTwice  = errors.New("colugo/zmq: Listen called twice")
	errEvicted      = errors.New("handshake evicted by newer ones")
	errConnEvicted  = errors.New("connection evicted to make room for a new one")
)

// Transport is a transport.Transport over ZMTP 3 and TCP. Create it with
// [New], start it with [Transport.Listen], stop it with [Transport.Close].
// All methods are safe for concurrent use.
//
// Goroutines, all owned by the Transport and waited for by Close: one accept
// loop per listener; for each connection, a reader (which runs the
// handshake first for accepted ones) and a writer; one redial loop per
// publisher address subscribed to.
type Transport struct {
	cfg  config
	log  *slog.Logger
	ping []byte

	// ctx is the transport's lifetime: Close cancels it. It bounds dials and
	// redial loops.
	ctx    context.Context //nolint:containedctx // the lifetime ctx its goroutines watch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closing atomic.Bool
	nextID  atomic.Uint64

	// The subscribed connections, so that Publish costs O(subscribed
	// connections) and takes no lock. fan maps a topic to a *fanEntry
	// listing the connections with the exact (colugo) subscription to it;
	// others lists the connections holding any other prefix (foreign SUBs:
	// "" or partial names), matched per message. Both are copy on write
	// under fanMu, by the subscribing connection's reader, so a change costs
	// O(subscribers of that topic) (or of others), never O(all connections).
	fan       sync.Map     // topic -> *fanEntry; an entry goes when its last subscriber does
	fanTopics atomic.Int64 // entries in fan: with none, Publish skips the lookup
	others    atomic.Pointer[[]*pubPeer]
	fanMu     sync.Mutex // after pubPeer.mu

	// Memory bounds (budget.go): receive-side bytes in flight, bytes
	// held by request handlers, bytes in all send queues, subscriptions.
	rbud     *budget
	hbud     *budget
	sendHeld atomic.Int64
	subHeld  atomic.Int64
	// Publishers waiting (back-pressure) for the send budget: sendRoom is
	// closed when some is released while sendWaiters > 0.
	sendWaiters atomic.Int32
	sendWaitMu  sync.Mutex
	sendRoom    chan struct{}

	sendDropped  atomic.Uint64
	recvDropped  atomic.Uint64
	extStripped  atomic.Uint64
	peersLost    atomic.Uint64
	connsRefused atomic.Uint64
	accepted     atomic.Uint64 // handshakes completed on the listeners, for tests

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{}
	h         transport.Handler
	ep        transport.Endpoint
	lns       []net.Listener
	raw       map[net.Conn]struct{} // in handshake, so Close can cut them
	conns     map[*conn]struct{}    // past the handshake
	// Accepted connections, for the limits (admit): those in handshake,
	// oldest first, and those past it.
	pending   list.List // of *inbound
	pendingBy map[string]int
	inConns   int
	inByAddr  map[string]int
	inByLn    []int                  // by index in lns
	dealers   map[string]*dealer     // by router address
	subs      map[string]*subscriber // by publisher address

	// Seed sockets (seed.go): the owner of each listener in lns that
	// belongs to a seed publisher or server (nil for the node's own), the
	// connections to seed reply servers by address, and the counters.
	lnSeed      []seedListener
	seedDealers map[string]*dealer
	seed        seedCounters
}

var _ transport.Transport = (*Transport)(nil)

// New returns a transport configured by opts. It opens nothing until
// [Transport.Listen]. It fails with an error wrapping [ErrInvalidOption] for
// an unusable option value.
func New(opts ...Option) (*Transport, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Transport{
		cfg:         cfg,
		log:         cfg.log,
		ping:        pingFrame(int((cfg.peerTimeout + 99*time.Millisecond) / (100 * time.Millisecond))),
		ctx:         ctx,
		cancel:      cancel,
		closeDone:   make(chan struct{}),
		rbud:        newBudget(cfg.recvBudget, cfg.recvPerHost),
		hbud:        newBudget(cfg.handlerBudget, cfg.handlerPerConn),
		raw:         make(map[net.Conn]struct{}),
		pendingBy:   make(map[string]int),
		inByAddr:    make(map[string]int),
		conns:       make(map[*conn]struct{}),
		dealers:     make(map[string]*dealer),
		subs:        make(map[string]*subscriber),
		seedDealers: make(map[string]*dealer),
	}, nil
}

// Listen binds the PUB and ROUTER listeners on two ephemeral ports of the
// configured host and starts accepting; incoming traffic goes to h. It
// returns their "host:port" addresses. It does not block. It must be called
// once, before Subscribe; it returns transport.ErrClosed after Close.
func (t *Transport) Listen(h transport.Handler) (transport.Endpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return transport.Endpoint{}, transport.ErrClosed
	case t.h != nil:
		return transport.Endpoint{}, errListenTwice
	}
	var lc net.ListenConfig
	addr := net.JoinHostPort(t.cfg.host, "0")
	pubLn, err := lc.Listen(t.ctx, "tcp", addr)
	if err != nil {
		return transport.Endpoint{}, fmt.Errorf("colugo/zmq: listen: %w", err)
	}
	routerLn, err := lc.Listen(t.ctx, "tcp", addr)
	if err != nil {
		_ = pubLn.Close()
		return transport.Endpoint{}, fmt.Errorf("colugo/zmq: listen: %w", err)
	}
	t.h = h
	t.lns = []net.Listener{pubLn, routerLn}
	t.ep = transport.Endpoint{Router: routerLn.Addr().String(), Pub: pubLn.Addr().String()}
	t.wg.Go(func() { t.acceptLoop(pubLn, 0, rolePubIn) })
	t.wg.Go(func() { t.acceptLoop(routerLn, 1, roleRouterIn) })
	if t.cfg.unix {
		// Abstract Unix sockets (Linux): no file to clean up, reachable only
		// from this network namespace, about half the round trip of TCP.
		name := "@colugo-" + randomHex(8)
		upub, err1 := lc.Listen(t.ctx, "unix", name+"-pub")
		urouter, err2 := lc.Listen(t.ctx, "unix", name+"-router")
		if err1 == nil && err2 == nil {
			t.lns = append(t.lns, upub, urouter)
			t.ep.LocalPub, t.ep.LocalRouter = unixScheme+name+"-pub", unixScheme+name+"-router"
			t.wg.Go(func() { t.acceptLoop(upub, 2, rolePubIn) })
			t.wg.Go(func() { t.acceptLoop(urouter, 3, roleRouterIn) })
		} else { // not Linux, or not permitted: TCP alone
			for _, ln := range []net.Listener{upub, urouter} {
				if ln != nil {
					_ = ln.Close()
				}
			}
			t.log.Debug("zmq unix sockets unavailable", keyErr, errors.Join(err1, err2))
		}
	}
	t.inByLn = make([]int, len(t.lns))
	t.lnSeed = make([]seedListener, len(t.lns))
	t.log.Info("zmq transport listening", keyEndpoint, t.ep.Router, "pub", t.ep.Pub)
	return t.ep, nil
}

// acceptLoop accepts on the listener lns[ln] until it is closed.
func (t *Transport) acceptLoop(l net.Listener, ln int, r role) {
	delay := 5 * time.Millisecond
	for {
		nc, err := l.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: wait a little instead of spinning.
			t.log.Warn("zmq accept failed", keyEndpoint, l.Addr().String(), keyErr, err)
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-t.ctx.Done():
				timer.Stop()
				return
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if !t.admit(nc, ln, r) {
			return
		}
	}
}

// inbound is an accepted connection, from accept until its teardown.
type inbound struct {
	nc      net.Conn
	key     string // remote address, for the per-address limits: addrKey
	ln      int
	elem    *list.Element // in t.pending while in handshake
	at      int64         // when the handshake completed (Unix ns)
	evicted bool          // closed to make room for a newer handshake
}

// addrKey is what the per-address limits count by: the IP of a TCP peer;
// every Unix-socket peer is the same "address".
func addrKey(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		if ip4 := a.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return a.IP.String()
	case *net.UnixAddr:
		return "unix"
	case nil:
		return ""
	}
	return a.String()
}

// limitHitLocked says which limit on established inbound connections one
// more from key on listener ln would break (why is "" when none), and so
// among which connections one must go to make room: all, those of
// listener ln, or those from key.
func (t *Transport) limitHitLocked(key string, ln int) (why string, inScope func(*inbound) bool) {
	switch {
	case t.inConns >= t.cfg.maxConns:
		return "too many connections", func(*inbound) bool { return true }
	case t.inByLn[ln] >= t.cfg.maxConnsPerListener:
		return "too many connections on this listener", func(o *inbound) bool { return o.ln == ln }
	case t.inByAddr[key] >= t.cfg.maxConnsPerAddr:
		return "too many connections from this address", func(o *inbound) bool { return o.key == key }
	}
	return "", nil
}

// makeRoomLocked takes established inbound connections off the limits'
// accounting until one more from in fits, and returns them for the caller
// to close. It takes first those that never sent a message (no
// subscription, no request: idle sockets, as a flood of them is made of),
// oldest first, then those whose last message is oldest. So a process
// holding many idle connections cannot lock out new peers, even from the
// same address (every node on this host connects from 127.0.0.1 or the
// Unix socket), while peers that use their connections keep them.
func (t *Transport) makeRoomLocked(in *inbound) (victims []*conn, err error) {
	for {
		why, inScope := t.limitHitLocked(in.key, in.ln)
		if why == "" {
			return victims, nil
		}
		var v *conn
		var vActive bool
		var vAt int64
		for c := range t.conns {
			if c.in == nil || !inScope(c.in) {
				continue
			}
			last := c.lastData.Load()
			active, at := last != 0, c.in.at
			if active {
				at = last
			}
			if v == nil || (vActive && !active) || (vActive == active && at < vAt) {
				v, vActive, vAt = c, active, at
			}
		}
		if v == nil {
			return victims, errors.New(why)
		}
		t.unaccountLocked(v)
		victims = append(victims, v)
		t.log.Debug("zmq connection evicted", keyPeer, v.addr, keyRole, v.role.String(), keyErr, why, "used", vActive)
	}
}

// unaccountLocked takes an accepted connection off the limits' counts;
// idempotent.
func (t *Transport) unaccountLocked(c *conn) {
	in := c.in
	if in == nil {
		return
	}
	c.in = nil
	t.inConns--
	if t.inByAddr[in.key]--; t.inByAddr[in.key] <= 0 {
		delete(t.inByAddr, in.key)
	}
	t.inByLn[in.ln]--
}

// admit starts the handshake of an accepted connection; the limits on
// established connections are applied when it completes (makeRoomLocked).
// A handshake beyond
// the limits on pending ones evicts the oldest pending one (of the same
// address if that address is at its limit, else of all): silent or slow
// connections cannot keep new peers out, since each new one displaces the
// oldest. It returns false once the transport is closed.
func (t *Transport) admit(nc net.Conn, ln int, r role) bool {
	key := addrKey(nc.RemoteAddr())
	var evict *inbound
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = nc.Close()
		return false
	}
	switch {
	case t.pendingBy[key] >= t.cfg.maxHandshakesPerAddr:
		for e := t.pending.Front(); e != nil; e = e.Next() {
			if in := e.Value.(*inbound); in.key == key {
				evict = in
				break
			}
		}
	case t.pending.Len() >= t.cfg.maxHandshakes:
		evict = t.pending.Front().Value.(*inbound)
	}
	if evict != nil {
		t.unpendLocked(evict)
		evict.evicted = true
	}
	in := t.pendLocked(nc, key, ln)
	t.wg.Go(func() { t.serveInbound(in, r) })
	t.mu.Unlock()
	if evict != nil {
		_ = evict.nc.Close() // its handshake fails, and is counted there
	}
	return true
}

// pendLocked records an accepted connection as in handshake.
func (t *Transport) pendLocked(nc net.Conn, key string, ln int) *inbound {
	in := &inbound{nc: nc, key: key, ln: ln}
	in.elem = t.pending.PushBack(in)
	t.pendingBy[key]++
	t.raw[nc] = struct{}{}
	return in
}

// unpendLocked takes in off the pending handshakes; idempotent.
func (t *Transport) unpendLocked(in *inbound) {
	if in.elem == nil {
		return
	}
	t.pending.Remove(in.elem)
	in.elem = nil
	if t.pendingBy[in.key]--; t.pendingBy[in.key] <= 0 {
		delete(t.pendingBy, in.key)
	}
}

// serveInbound runs an accepted connection: handshake (bounded), then its
// reader until it ends.
func (t *Transport) serveInbound(in *inbound, r role) {
	nc := in.nc
	c := t.newConn(nc, nc.RemoteAddr().String(), r)
	now := time.Now()
	err := c.handshake(now.Add(t.cfg.greetingTimeout), now.Add(t.cfg.handshakeTimeout))
	t.mu.Lock()
	delete(t.raw, nc)
	t.unpendLocked(in)
	if in.evicted { // whatever the handshake made of its closed socket
		err = errEvicted
	}
	var victims []*conn
	seedL := t.lnSeed[in.ln]
	if err == nil && !t.closed && seedL != nil && !seedL.openLocked() {
		err = errSeedClosed // its seed publisher or server closed during the handshake
	}
	if err == nil && !t.closed {
		victims, err = t.makeRoomLocked(in)
	}
	if err != nil || t.closed {
		t.mu.Unlock()
		_ = nc.Close()
		if err != nil {
			level := slog.LevelDebug
			if errors.Is(err, errPanic) { // a bug, here or in a net.Conn
				level = slog.LevelWarn
			}
			t.log.Log(t.ctx, level, "zmq handshake failed", keyPeer, c.addr, keyRole, r.String(), keyErr, err)
			t.connsRefused.Add(1)
		}
		return
	}
	t.accepted.Add(1)
	in.at = time.Now().UnixNano()
	c.in = in
	t.inConns++
	t.inByAddr[in.key]++
	t.inByLn[in.ln]++
	t.conns[c] = struct{}{}
	if r == rolePubIn {
		// Indexed (fan, others) by its first subscription: an idle
		// connection costs Publish nothing.
		c.pp = &pubPeer{c: c, exact: make(map[string]int), other: make(map[string]int),
			bpExact: make(map[string]int), bpOther: make(map[string]int)}
	}
	if seedL != nil {
		seedL.attachLocked(c)
	}
	t.wg.Go(c.writeLoop)
	t.mu.Unlock()
	for _, v := range victims {
		v.close(errConnEvicted, true)
		t.connsRefused.Add(1)
	}
	c.teardown(c.readLoop())
}

// dial connects to addr and runs the handshake, bounded by ctx, by the
// handshake timeout and by Close. The caller starts the goroutines.
func (t *Transport) dial(ctx context.Context, addr string, r role) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.cfg.handshakeTimeout)
	defer cancel()
	stopLife := context.AfterFunc(t.ctx, cancel)
	defer stopLife()
	var d net.Dialer
	network, address := "tcp", addr
	if strings.HasPrefix(addr, unixScheme) {
		network, address = "unix", addr[len(unixScheme):]
	}
	nc, err := d.DialContext(dctx, network, address)
	if err != nil {
		return nil, err
	}
	return t.handshakeOut(dctx, nc, addr, r)
}

// handshakeOut runs the handshake of a dialled connection, bounded by dctx
// (which has a deadline) and by Close; it closes nc if it fails.
func (t *Transport) handshakeOut(dctx context.Context, nc net.Conn, addr string, r role) (*conn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = nc.Close()
		return nil, transport.ErrClosed
	}
	t.raw[nc] = struct{}{}
	t.mu.Unlock()
	// The handshake reads with a deadline; ctx or Close ending it early
	// moves that deadline to the past.
	stopAbort := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	deadline, _ := dctx.Deadline()
	c := t.newConn(nc, addr, r)
	err := c.handshake(time.Time{}, deadline)
	if !stopAbort() && err == nil {
		err = dctx.Err() // aborted just after it succeeded: the deadline is spoilt
	}
	t.mu.Lock()
	delete(t.raw, nc)
	t.mu.Unlock()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// readLoop reads messages until the connection fails and returns why.
func (c *conn) readLoop() error {
	for {
		m, err := c.readMsg()
		if err != nil {
			return err
		}
		if m.isCmd {
			if c.role == rolePubIn && (m.cmd == cmdSubscribe || m.cmd == cmdCancel) {
				c.noteData()
				c.pp.update(string(m.frames[0]), m.cmd == cmdSubscribe)
			} else if c.role == roleSeedPubIn && m.cmd == cmdSubscribe {
				c.noteData() // a seed SUB gets everything: its prefix does not matter
			}
			c.recvRelease()
			continue // PING (already answered), PONG, others
		}
		c.handle(m.frames)
		c.recvRelease()
	}
}

// handle dispatches one data message by the connection's role.
func (c *conn) handle(frames [][]byte) {
	t := c.t
	c.noteData()
	if c.role >= roleSeedPubIn {
		c.handleSeed(frames)
		return
	}
	if c.role == rolePubIn {
		if len(frames) == 1 && len(frames[0]) > 0 && frames[0][0] <= 1 {
			c.pp.update(string(frames[0][1:]), frames[0][0] == 1)
			return
		}
		c.drop(errors.New("not a subscription"), frames)
		return
	}
	msg, err := c.decode(frames)
	if err != nil {
		c.drop(err, frames)
		return
	}
	switch c.role {
	case roleSub:
		if msg.Header.Kind != transport.KindPublish {
			c.drop(fmt.Errorf("kind %v from a publisher", msg.Header.Kind), frames)
			return
		}
		// HandlePublish does not keep msg: one Message serves every
		// publish on this connection.
		c.msg = msg
		t.h.HandlePublish(&c.msg)
		c.msg.Payload = nil // do not pin the payload until the next message
		return
	}
	m := new(transport.Message) // requests and replies are kept by their handlers and callers
	*m = msg
	switch c.role {
	case roleRouterIn:
		switch msg.Header.Kind {
		case transport.KindRequest, transport.KindControl, transport.KindCancel:
			// A cancel releases nothing: its handler may still run and
			// hold the request until it ends (the charge's cleanup).
			if msg.Header.Kind != transport.KindCancel {
				if !c.rp.hold(msg.Header.RequestID, m.Payload) {
					return // closed while waiting for handler budget
				}
				c.rp.open.Add(1)
			}
			t.h.HandleRequest(m, &c.rp)
		default:
			c.drop(fmt.Errorf("kind %v from a requester", msg.Header.Kind), frames)
		}
	case roleDealer:
		if msg.Header.Kind != transport.KindReply {
			c.drop(fmt.Errorf("kind %v from a router", msg.Header.Kind), frames)
			return
		}
		c.dl.deliver(m)
	}
}

func (c *conn) drop(err error, frames [][]byte) {
	c.t.recvDropped.Add(1)
	if c.t.log.Enabled(c.t.ctx, slog.LevelDebug) {
		c.t.log.Debug("zmq message dropped", keyPeer, c.addr, keyRole, c.role.String(), "frames", len(frames), keyErr, err)
	}
}

// decode parses [name+"\x00", header, payload].
func (c *conn) decode(frames [][]byte) (transport.Message, error) {
	if len(frames) != 3 {
		return transport.Message{}, fmt.Errorf("%d frames, want 3", len(frames))
	}
	f := frames[0]
	name := c.name
	if len(f) != len(name)+1 || f[len(name)] != 0 || string(f[:len(name)]) != name {
		var err error
		if name, err = wire.ParseName(f); err != nil {
			return transport.Message{}, err
		}
		c.name = name
	}
	h, err := wire.DecodeReuse(frames[1], &c.hdr)
	if err != nil {
		return transport.Message{}, err
	}
	c.hdr = h
	if h.Ext != "" && c.role == roleRouterIn && !c.ext.Load() {
		c.ext.Store(true) // a requester that sends extensions decodes them
	}
	return transport.Message{Name: name, Header: h, Payload: frames[2], Exclusive: true}, nil
}

// teardown runs in the reader goroutine once the reader has stopped: it
// closes the connection, waits for its writer, and unhooks it.
func (c *conn) teardown(readErr error) {
	t := c.t
	if errors.Is(readErr, errFrameTooLarge) || errors.Is(readErr, errTooManyFrames) || errors.Is(readErr, errBadFlags) || errors.Is(readErr, errTooSlow) {
		if c.role >= roleSeedPubIn {
			t.seed.recvDropped.Add(1)
		} else {
			t.recvDropped.Add(1)
		}
	}
	c.close(lossCause(readErr, t.cfg.peerTimeout), false)
	c.recvRelease()
	<-c.writerDone
	t.mu.Lock()
	delete(t.conns, c)
	t.unaccountLocked(c)
	if c.sc != nil && c.sc.owner != nil {
		c.sc.owner.detachLocked(c)
	}
	t.mu.Unlock()
	if c.pp != nil {
		c.pp.unindex()
		c.pp.releaseAll()
	}
	c.dropQueued() // after the unhooking, so that few publishes meet a dead queue
	if !c.deliberate {
		t.log.Debug("zmq connection ended", keyPeer, c.addr, keyRole, c.role.String(), keyErr, c.closeErr)
	}
}

// lossCause says why a read failed, for logs and HandlePeerLost.
func lossCause(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: nothing received for %v", transport.ErrPeerSilent, timeout)
	case errors.Is(err, io.EOF):
		return errors.New("connection closed by peer")
	}
	return err
}

// lostErr is the error requests and HandlePeerLost get for a lost conn.
func (c *conn) lostErr() error {
	if errors.Is(c.closeErr, transport.ErrClosed) {
		return transport.ErrClosed
	}
	return fmt.Errorf("%w: %s: %w", transport.ErrPeerLost, c.addr, c.closeErr)
}

// pubPeer is the subscription set of one connected subscriber.
type pubPeer struct {
	c *conn

	mu    sync.RWMutex
	exact map[string]int // colugo subscriptions, "topic\x00", by topic: one lookup per Publish
	other map[string]int // any other prefix (foreign SUBs: "" for everything, partial names)
	// lens counts other's prefixes by length, and lenList lists the lengths
	// in use, so that matching costs one lookup per distinct length rather
	// than one comparison per prefix.
	lens    [wire.MaxName + 1]int
	lenList []int
	n       int // distinct prefixes held
	bytes   int // their cost against WithSubscriptionLimits (prefixCost)
	// Back-pressure markers (bpMarker+prefix) by the prefix they name:
	// bpExact by topic for "topic\x00", bpOther for any other prefix.
	// bpN counts both, so that a Publish checks them only when any exist.
	bpExact map[string]int
	bpOther map[string]int
	bpN     atomic.Int32
}

// bpMarker starts the subscription prefix with which a colugo subscriber
// asks for back-pressure on the prefix that follows it: no name frame
// starts with NUL, so other publishers (libzmq, zmq4, older colugo) hold
// it as a prefix that never matches.
const bpMarker = "\x00colugo/bp\x00"

// updateBP counts a back-pressure marker for prefix (add) or its
// withdrawal; p.mu is held. It is charged to the subscription limits like
// any prefix.
func (p *pubPeer) updateBPLocked(prefix string, add bool) {
	m, key := p.bpOther, prefix
	if strings.HasSuffix(prefix, "\x00") {
		m, key = p.bpExact, prefix[:len(prefix)-1]
	}
	cost := prefixCost(bpMarker + prefix)
	n, ok := m[key]
	switch {
	case add && !ok && !p.admitCostLocked(cost):
		t := p.c.t
		t.recvDropped.Add(1)
		t.log.Debug("zmq back-pressure request dropped: over the subscription limits", keyPeer, p.c.addr,
			"prefixes", p.n, "bytes", p.bytes, "all", t.subHeld.Load())
	case add:
		m[key] = n + 1
		if !ok {
			p.n++
			p.bpN.Add(1)
		}
	case !ok:
	case n <= 1:
		delete(m, key)
		p.n--
		p.bpN.Add(-1)
		p.bytes -= cost
		p.c.t.subHeld.Add(-int64(cost))
	default:
		m[key] = n - 1
	}
}

// wantsBP reports whether the subscriber asked for back-pressure on name.
func (p *pubPeer) wantsBP(name string) bool {
	if p.bpN.Load() == 0 {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.bpExact[name] > 0 {
		return true
	}
	for k, n := range p.bpOther {
		if n > 0 && strings.HasPrefix(name, k) {
			return true
		}
	}
	return false
}

// prefixCost is what a held prefix counts against the subscription
// bounds: its bytes plus about what a map entry and its string header
// cost.
func prefixCost(key string) int { return len(key) + 64 }

// update counts a subscription (add) or its withdrawal, as libzmq counts
// them. Prefixes that can never match a name frame are not kept.
func (p *pubPeer) update(prefix string, add bool) {
	if strings.HasPrefix(prefix, bpMarker) {
		if rest := prefix[len(bpMarker):]; len(rest) <= wire.MaxName+1 {
			p.mu.Lock()
			p.updateBPLocked(rest, add)
			p.mu.Unlock()
		}
		return
	}
	m, key, isOther := p.other, prefix, true
	if strings.HasSuffix(prefix, "\x00") {
		m, key, isOther = p.exact, prefix[:len(prefix)-1], false
	}
	if len(key) > wire.MaxName {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	hadOther := len(p.lenList) > 0
	n, ok := m[key]
	defer p.reindexLocked(m, key, ok, isOther, hadOther)
	switch {
	case add && !ok && !p.admitLocked(key):
		t := p.c.t
		t.recvDropped.Add(1)
		t.log.Debug("zmq subscription dropped: over the subscription limits", keyPeer, p.c.addr,
			"prefixes", p.n, "bytes", p.bytes, "all", t.subHeld.Load())
	case add:
		m[key] = n + 1
		if !ok {
			p.n++
			if isOther {
				p.countLenLocked(len(key), 1)
			}
		}
	case !ok:
	case n <= 1:
		delete(m, key)
		p.n--
		p.bytes -= prefixCost(key)
		p.c.t.subHeld.Add(-int64(prefixCost(key)))
		if isOther {
			p.countLenLocked(len(key), -1)
		}
	default:
		m[key] = n - 1
	}
}

// admitLocked charges a new prefix to the subscription bounds (per
// connection: count and bytes; transport-wide: bytes) if it fits.
func (p *pubPeer) admitLocked(key string) bool { return p.admitCostLocked(prefixCost(key)) }

func (p *pubPeer) admitCostLocked(cost int) bool {
	cfg := &p.c.t.cfg
	if p.n >= cfg.maxSubs || p.bytes+cost > cfg.maxSubBytes {
		return false
	}
	if p.c.t.subHeld.Add(int64(cost)) > cfg.subBudget {
		p.c.t.subHeld.Add(-int64(cost))
		return false
	}
	p.bytes += cost
	return true
}

// releaseAll returns the prefixes' charge when the connection ends.
func (p *pubPeer) releaseAll() {
	p.mu.Lock()
	p.c.t.subHeld.Add(-int64(p.bytes))
	p.bytes = 0
	p.mu.Unlock()
}

func (p *pubPeer) countLenLocked(l, delta int) {
	p.lens[l] += delta
	if (delta > 0 && p.lens[l] == 1) || (delta < 0 && p.lens[l] == 0) {
		p.lenList = p.lenList[:0]
		for i, c := range p.lens {
			if c > 0 {
				p.lenList = append(p.lenList, i)
			}
		}
	}
}

// wants reports whether a message named name goes to this subscriber: its
// name frame name+"\x00" starts with one of the subscribed prefixes.
func (p *pubPeer) wants(name string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.exact[name] > 0 || p.wantsOtherLocked(name)
}

// wantsOnlyOther reports whether name matches one of p's other prefixes
// but not an exact subscription: Publish has not sent it to p by fan.
func (p *pubPeer) wantsOnlyOther(name string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.exact[name] == 0 && p.wantsOtherLocked(name)
}

func (p *pubPeer) wantsOtherLocked(name string) bool {
	for _, l := range p.lenList {
		if l > len(name) {
			break
		}
		if p.other[name[:l]] > 0 {
			return true
		}
	}
	return false
}

// exactPeers returns the connections subscribed to topic exactly, or nil.
func (t *Transport) exactPeers(topic string) *[]*pubPeer {
	if t.fanTopics.Load() == 0 { // saves the lookup while nobody subscribes
		return nil
	}
	v, ok := t.fan.Load(topic)
	if !ok {
		return nil
	}
	return v.(*fanEntry).peers.Load()
}

// fanEntry lists the connections subscribed to one topic exactly.
type fanEntry struct {
	peers atomic.Pointer[[]*pubPeer] // copy on write under Transport.fanMu; never empty while in fan
}

// reindexLocked updates the transport's index after update changed m[key]:
// had says whether key was held before, hadOther whether p held any other
// prefix. p.mu is held. Only the 0 <-> 1 transitions of a count touch the
// index, so repeating a subscription costs no rebuild.
func (p *pubPeer) reindexLocked(m map[string]int, key string, had, isOther, hadOther bool) {
	t := p.c.t
	if isOther {
		if has := len(p.lenList) > 0; has != hadOther {
			t.fanMu.Lock()
			t.others.Store(withPeer(t.others.Load(), p, has))
			t.fanMu.Unlock()
		}
		return
	}
	if _, has := m[key]; has != had {
		t.fanMu.Lock()
		t.setFanLocked(key, p, has)
		t.fanMu.Unlock()
	}
}

// setFanLocked adds p to (in) or removes it from topic's entry; fanMu is
// held. It copies that one topic's list.
func (t *Transport) setFanLocked(topic string, p *pubPeer, in bool) {
	v, ok := t.fan.Load(topic)
	if !ok {
		if in {
			e := new(fanEntry)
			e.peers.Store(&[]*pubPeer{p})
			t.fan.Store(topic, e)
			t.fanTopics.Add(1)
		}
		return
	}
	e := v.(*fanEntry)
	peers := withPeer(e.peers.Load(), p, in)
	e.peers.Store(peers) // nil: a Publish still holding e sees an empty list
	if peers == nil {
		t.fan.Delete(topic)
		t.fanTopics.Add(-1)
	}
}

// withPeer returns a copy of *old with p added (in) or removed; nil for an
// empty list.
func withPeer(old *[]*pubPeer, p *pubPeer, in bool) *[]*pubPeer {
	var list []*pubPeer
	if old != nil {
		list = *old
	}
	next := make([]*pubPeer, 0, len(list)+1)
	for _, q := range list {
		if q != p {
			next = append(next, q)
		}
	}
	if in {
		next = append(next, p)
	}
	if len(next) == 0 {
		return nil
	}
	return &next
}

// unindex takes a connection that has ended out of the index: O(its
// subscriptions × their subscribers). Its reader has stopped, so no update
// runs concurrently.
func (p *pubPeer) unindex() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.c.t
	t.fanMu.Lock()
	defer t.fanMu.Unlock()
	for topic := range p.exact {
		t.setFanLocked(topic, p, false)
	}
	if len(p.lenList) > 0 {
		t.others.Store(withPeer(t.others.Load(), p, false))
	}
}

// Publish queues msg (whose Kind defaults to publish) for every connected
// subscriber with a subscription that is a prefix of msg.Name+"\x00". It
// encodes the message once. With a zero opts.MaxWait it never blocks: a
// subscriber whose send queue is full misses it, counted in
// Stats().SendDropped and in the connection's SubscriberStats. With a
// positive MaxWait it waits for the subscribers that asked for
// back-pressure on the topic (transport.SubscribeOptions.BackPressure)
// and whose queue is full, or that are more than 128 KiB behind while
// the send budget is full: all of them within one deadline, MaxWait after
// the call started, and until ctx ends. One still full at the deadline
// misses the message and is demoted: later publishes do not wait for it
// until its queue has drained to half of what it held. It costs
// O(subscribed connections) and takes no lock shared with other topics:
// connections without a matching subscription cost it nothing. It keeps
// nothing of msg once it returns. It returns an error wrapping
// wire.ErrName for an invalid name, transport.ErrClosed after Close, and
// ctx's error when ctx ended a wait (the subscribers not yet waited for
// then miss the message).
func (t *Transport) Publish(ctx context.Context, msg *transport.Message, opts transport.PublishOptions) (transport.PublishResult, error) {
	var res transport.PublishResult
	if t.closing.Load() {
		return res, transport.ErrClosed
	}
	if err := wire.CheckName(msg.Name); err != nil {
		return res, err
	}
	var scratch, scratch1 [256]byte // the encoded frames, on the stack unless the header is huge
	var pre, pre1 []byte            // with the header's extensions, and without (for peers that do not decode them)
	hasExt := msg.Header.Ext != ""
	var stripped uint64
	prefix := func(p *pubPeer) []byte {
		if !hasExt || p.c.ext.Load() {
			if pre == nil {
				pre = appendPrefix(scratch[:0], msg.Name, &msg.Header, transport.KindPublish, len(msg.Payload), true)
			}
			return pre
		}
		stripped++
		if pre1 == nil {
			pre1 = appendPrefix(scratch1[:0], msg.Name, &msg.Header, transport.KindPublish, len(msg.Payload), false)
		}
		return pre1
	}
	payload := payloadRef{b: msg.Payload, owned: msg.Exclusive, held: &t.sendHeld} // one private copy at most, shared by the connections
	// Only the subscribed connections are visited: those of the topic's
	// entry, then those with other prefixes (normally none) that match. A
	// full queue (a stalled subscriber) costs a lock and a count, or, for
	// a back-pressure subscriber when MaxWait allows, a place in waiting.
	var dropped uint64
	var waitBuf [8]*pubPeer
	waiting := waitBuf[:0]
	full := func(p *pubPeer) {
		if opts.MaxWait > 0 && !p.c.demoted.Load() && p.wantsBP(msg.Name) {
			waiting = append(waiting, p)
			return
		}
		p.c.missed(msg.Name)
		dropped++
	}
	if peers := t.exactPeers(msg.Name); peers != nil {
		res.Subscribers += len(*peers)
		for _, p := range *peers {
			if !p.c.sendAt(prefix(p), &payload, msg.Header.SendTime) {
				full(p)
			}
		}
	}
	if others := t.others.Load(); others != nil {
		for _, p := range *others {
			if !p.wantsOnlyOther(msg.Name) {
				continue
			}
			res.Subscribers++
			if !p.c.sendAt(prefix(p), &payload, msg.Header.SendTime) {
				full(p)
			}
		}
	}
	var err error
	if len(waiting) > 0 {
		w := waitShared{timer: time.NewTimer(opts.MaxWait)}
		for _, p := range waiting {
			out := waitCtx
			if err == nil {
				out = p.c.sendBefore(ctx, prefix(p), &payload, msg.Header.SendTime, &w)
			}
			switch out {
			case waitQueued:
				continue
			case waitCtx:
				err = ctx.Err()
			case waitFull, waitBudget:
				p.c.demote()
			}
			p.c.missed(msg.Name)
			dropped++
		}
		w.timer.Stop()
	}
	if dropped > 0 {
		t.sendDropped.Add(dropped) // once per message, not once per stalled subscriber
	}
	if stripped > 0 {
		t.extStripped.Add(stripped)
	}
	res.Dropped = int(dropped)
	return res, err
}

// Stats returns the transport's counters, and one SubscriberStats per
// subscriber connection (accepted on the PUB listeners, past the
// handshake). It costs O(connections) and takes only locks that nothing
// holds across I/O: it does not block.
func (t *Transport) Stats() transport.Stats {
	st := transport.Stats{
		SendDropped:  t.sendDropped.Load(),
		RecvDropped:  t.recvDropped.Load(),
		ExtStripped:  t.extStripped.Load(),
		PeersLost:    t.peersLost.Load(),
		ConnsRefused: t.connsRefused.Load(),
	}
	t.seed.fill(&st)
	t.mu.Lock()
	for c := range t.conns {
		if c.pp != nil {
			st.Subscribers = append(st.Subscribers, c.subscriberStats())
		}
	}
	t.mu.Unlock()
	return st
}

// subscriberStats describes a subscriber connection.
func (c *conn) subscriberStats() transport.SubscriberStats {
	s := transport.SubscriberStats{Remote: c.addr, Dropped: c.dropped.Load(), Slow: c.slow.Load() || c.demoted.Load()}
	p := c.pp
	p.mu.RLock()
	s.BackPressure = int(p.bpN.Load())
	s.Topics = p.n - s.BackPressure
	p.mu.RUnlock()
	c.wmu.Lock()
	s.Queued, s.QueuedBytes = c.queued, c.qbytes
	c.wmu.Unlock()
	return s
}

// Disconnect closes the connections this transport dialled to addr (a
// router or a publisher address): requests in flight on it fail with an
// error wrapping transport.ErrPeerLost, and subscriptions to addr are
// forgotten. Handler.HandlePeerLost is not called for it. The next Request
// to addr dials again. It does not wait for the connection's goroutines.
func (t *Transport) Disconnect(addr string) {
	t.mu.Lock()
	d := t.dealers[addr]
	if d != nil {
		delete(t.dealers, addr)
	}
	s := t.subs[addr]
	if s != nil {
		delete(t.subs, addr)
	}
	t.mu.Unlock()
	if d != nil {
		d.fail(fmt.Errorf("%w: %s: disconnected", transport.ErrPeerLost, addr))
		if c := d.conn(); c != nil {
			c.close(errors.New("disconnected"), true)
		}
	}
	if s != nil {
		s.stop()
	}
}

// Close stops the transport: it closes the listeners and every connection,
// fails requests in flight with transport.ErrClosed, and blocks until every
// goroutine of the transport has returned, so no Handler method runs after
// it. Later calls to other methods return transport.ErrClosed. Close is
// idempotent and safe to call concurrently; every call waits for the
// shutdown and returns nil.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.closeDone
		return nil
	}
	t.closed = true
	t.closing.Store(true)
	lns := t.lns
	raw := make([]net.Conn, 0, len(t.raw))
	for nc := range t.raw {
		raw = append(raw, nc)
	}
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	dealers := make([]*dealer, 0, len(t.dealers)+len(t.seedDealers))
	for _, d := range t.dealers {
		dealers = append(dealers, d)
	}
	for _, d := range t.seedDealers {
		dealers = append(dealers, d)
	}
	clear(t.dealers)
	clear(t.seedDealers)
	clear(t.subs)
	t.mu.Unlock()

	t.cancel()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, nc := range raw {
		_ = nc.Close()
	}
	for _, d := range dealers {
		d.fail(transport.ErrClosed)
	}
	for _, c := range conns {
		c.close(transport.ErrClosed, true)
	}
	t.wg.Wait()
	close(t.closeDone)
	return nil
}

// Subscribers returns how many connected subscribers have a subscription
// that matches topic: what a publisher can count on right now. Like
// Publish, it costs O(subscribed connections), takes no lock shared with
// other topics and does not block.
func (t *Transport) Subscribers(topic string) int {
	n := 0
	if peers := t.exactPeers(topic); peers != nil {
		n = len(*peers)
	}
	if others := t.others.Load(); others != nil {
		for _, p := range *others {
			if p.wantsOnlyOther(topic) {
				n++
			}
		}
	}
	return n
}

// unixScheme prefixes Unix socket addresses in Endpoint.LocalRouter and
// LocalPub; Request and Subscribe dial them like TCP addresses.
const unixScheme = "unix:"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b)
}

var (
	_ transport.SubscriberCounter = (*Transport)(nil)
	_ transport.ConnWatcher       = (*routerPeer)(nil)
)
