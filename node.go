package colugo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/seal"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
	"golang.org/x/sync/singleflight"
)

// Version is the colugo version a node reports in $describe.
const Version = "0.1.0"

// Node is one participant: it publishes and subscribes to topics, serves
// and calls services, and finds its peers through discovery. Create it with
// NewNode and Close it when done. A Node is safe for concurrent use.
//
// Locking. Publishing, receiving and serving a request take no node-wide
// lock: they read atomically replaced snapshots (recv, served) and
// per-topic or per-connection state; a request takes mu once, briefly, to
// pick the servers of a service it has not asked before or since the
// catalog changed (targets, rr; then rotations is used). The locks, in the order they may be taken (a lock is never taken while
// one below it is held):
//
//  1. mu guards the catalog and the peer table: subs, patterns, pubs, seqs,
//     services, counters, svcStats, peers, rr, changed, catalog, status, watchers,
//     targets, and the replacement of recv and served. It is held briefly
//     and never across a transport call that can wait, a handler, or a
//     channel send to a user.
//  2. reqMu guards the request path's own state: inflight and watched.
//     Close takes mu then reqMu to set closed, so that goLocked (called
//     under either) never starts a goroutine after Close began.
//  3. pubSeq.mu (one per topic) serialises a sealed topic's publishes, from
//     taking a sequence number to handing the message to the transport, so
//     that numbers reach the wire in order. A back-pressured publish may
//     hold it for its maxWait; $describe (under mu) then does not wait for
//     it (pubSeq.baseline), and tail markers skip the topic (TryLock).
//  4. A history subscription's subHistory.mu: held while it delivers a
//     publisher's messages in order (replayed, held and live ones), so
//     it takes the leaf locks below; it never takes mu, reqMu or a
//     pubSeq.mu (a recovery is started after it is released). A topic's
//     history.mu (what a publishing node keeps) is taken under
//     pubSeq.mu or alone.
//  5. Leaf locks, held for a few instructions and never while taking
//     another: a subscription's queue (chanSink.mu, subCore.mu), a
//     handler context's (handlerCtx.mu), counters.seqMu, a watcher's.
//
// Goroutines the node starts (discovery, tails, subscription feeders,
// handlers) are counted in wg and started only through goLocked, which
// refuses once closed is set; Close waits for all of them.
type Node struct {
	name, id string
	cfg      nodeConfig
	log      *slog.Logger
	tr       transport.Transport
	ep       transport.Endpoint
	disc     discovery.Discovery

	addrs       addrCheck     // which addresses the node may dial (env.go)
	addrRefused atomic.Uint64 // addresses not dialled by that policy
	// peersRefused counts nodes found past WithMaxPeers, and descriptions
	// refused as too large; peersFull is set while the bound is reached
	// (the start of such an episode is logged once).
	peersRefused atomic.Uint64
	// describeTooLarge: this node's own $describe went over what peers
	// accept (logged and reported once).
	describeTooLarge atomic.Bool
	peersFull        bool // under mu
	descBytes        int  // the kept descriptions' sizes together, under mu
	// waiting holds nodes found past WithMaxPeers, by key, taken in
	// waitOrder's order as peers leave (waitPeerLocked); under mu.
	waiting   map[string]discovery.Peer
	waitOrder []string

	ctx    context.Context // the node's lifetime; its goroutines and handlers watch it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	// recv maps a topic to its local subscriptions. It is replaced, never
	// modified, so the receive path reads it without a lock.
	recv atomic.Pointer[map[string]*topicSubs]

	handlers atomic.Int64  // running request handlers (handlerDone ends one)
	draining atomic.Bool   // Shutdown began: no new requests, publishers, subscriptions or servers
	idle     chan struct{} // one slot: handlers reached 0 while draining

	keys         *seal.Keyring // nil: nothing sealed
	guard        *seal.Guard   // replay checks; nil without a key
	authFailures atomic.Uint64
	reqSeq       atomic.Uint64 // sequence of this node's requests and control requests, for replay checks
	lastSend     atomic.Int64  // send time of the last request (sendClock)
	eventsDrops  atomic.Uint64 // events dropped by Events watchers that fell behind

	historyRefused, historyFailed atomic.Uint64      // Stats.HistoryRefused, Stats.HistoryFailed
	fetches                       singleflight.Group // first history fetches in flight (fetchShared)

	mu       sync.Mutex
	subs     map[string][]*subCore    // local subscriptions by topic
	patterns map[*patternSub]struct{} // SubscribePattern subscriptions (their topics' are in subs)
	pubs     map[string]*pubCount     // local publishers by topic
	seqs     map[string]*pubSeq       // sequence per topic, outliving its publishers
	services map[string]*serviceCore
	counters map[string]*counters      // per topic
	svcStats map[string]*counters      // per service
	peers    map[string]*peer          // by discovery key
	rr       map[string]*atomic.Uint64 // round-robin position per service
	changed  chan struct{}             // closed and replaced when the peer catalog changes
	settled  chan struct{}             // closed once discovery's first look is applied (WaitDiscovered)
	catalog  string                    // hash of pubs and services
	status   map[string]func() any     // SetStatus's documents
	// announcing is set while a catalogChanged announces; announceAgain
	// says the catalog changed since its last announcement began.
	announcing, announceAgain atomic.Bool
	watchers                  map[*watcher]struct{}
	targets                   map[string][]target // servers per service, rebuilt after any change
	// rotations is the request path's copy of targets with their
	// round-robin positions, replaced (under mu) when a service's servers
	// are first looked up and emptied when targets is: picking a known
	// service's server takes no lock.
	rotations atomic.Pointer[map[string]*rotation]

	// served is a copy of services for the request path, replaced (under
	// mu) when a service comes or goes, so that serving a request takes no
	// node-wide lock.
	served atomic.Pointer[map[string]*serviceCore]
	// reqMu guards the running handlers; it is the request path's own lock.
	reqMu    sync.Mutex
	inflight map[inflightKey]*handlerCtx
	watched  map[transport.ReplyWriter]bool // requester connections watched for loss

	seed *seedNode // WithSeedCompat; nil without
}

// NewNode creates a node called name, binds its transport, announces it and
// starts looking for peers. name is for people and tools: 1 to 63 bytes of
// UTF-8, not necessarily unique (each node also gets a random ID).
//
// Defaults: discovery through the host-local registry and mDNS on every
// multicast interface, and transport/zmq listening on every interface
// (0.0.0.0, ephemeral ports). The COLUGO_DISCOVERY environment variable
// overrides the discovery option for network transports (see
// [EnvDiscovery]); with a host-only value such as "local" the default
// transport listens on 127.0.0.1 only and the node dials nothing but
// loopback. Errors: an invalid name or option (ErrInvalidOption, also for
// a host-only COLUGO_DISCOVERY with a transport that listens beyond
// loopback), a transport that cannot bind, or a discovery that cannot
// start.
func NewNode(name string, opts ...NodeOption) (*Node, error) {
	if err := checkNodeName(name); err != nil {
		return nil, err
	}
	cfg := nodeConfig{defaultTimeout: 5 * time.Second, codec: codec.JSON{}, maxHandlers: 1024, maxPeers: 1024, sealing: defaultSealing}
	for _, o := range opts {
		if o != nil {
			o.applyNode(&cfg)
		}
	}
	if cfg.codec == nil || cfg.defaultTimeout <= 0 || cfg.maxHandlers <= 0 || cfg.maxPeers <= 0 {
		return nil, fmt.Errorf("%w: codec, default timeout, max handlers and max peers must be set", ErrInvalidOption)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	inProcess := false
	if ip, ok := cfg.tr.(transport.InProcessTransport); ok {
		inProcess = ip.InProcess()
	}
	var addrs addrCheck
	scope := ScopeNone // an in-process transport reaches no network
	if !inProcess {
		d, sc, err := discoveryFromEnv(cfg.disc)
		if err != nil {
			return nil, err
		}
		cfg.disc, scope = d, sc
		addrs = addrCheck{on: true, hostOnly: scope.HostOnly()}
	}
	if cfg.disc == nil {
		cfg.disc = defaultDiscovery(cfg.log)
	}
	if cfg.tr == nil {
		tr, err := defaultTransport(cfg.log, addrs.hostOnly)
		if err != nil {
			return nil, err
		}
		cfg.tr = tr
	}

	n := &Node{
		name:     name,
		id:       newID(),
		cfg:      cfg,
		tr:       cfg.tr,
		disc:     cfg.disc,
		addrs:    addrs,
		subs:     make(map[string][]*subCore),
		pubs:     make(map[string]*pubCount),
		seqs:     make(map[string]*pubSeq),
		services: make(map[string]*serviceCore),
		counters: make(map[string]*counters),
		svcStats: make(map[string]*counters),
		peers:    make(map[string]*peer),
		waiting:  make(map[string]discovery.Peer),
		rr:       make(map[string]*atomic.Uint64),
		changed:  make(chan struct{}),
		settled:  make(chan struct{}),
		inflight: make(map[inflightKey]*handlerCtx),
		watched:  make(map[transport.ReplyWriter]bool),
		watchers: make(map[*watcher]struct{}),
		targets:  make(map[string][]target),
		idle:     make(chan struct{}, 1),
	}
	n.log = cfg.log.With(slog.String(keyNode, name), slog.String(keyNodeID, n.id))
	if k, ok := keyFromEnv(); ok {
		cfg.key, cfg.prevKeys = k, nil
	}
	if cfg.key != nil {
		ring, err := seal.NewKeyring(cfg.key, cfg.prevKeys...)
		if err != nil {
			err = fmt.Errorf("%w: key: %w", ErrInvalidOption, err)
		}
		var guard *seal.Guard
		if err == nil {
			guard, err = n.newGuard()
		}
		if err != nil {
			if cfg.tr != nil {
				_ = cfg.tr.Close()
			}
			return nil, err
		}
		n.keys, n.guard = ring, guard
	}
	if err := n.setupSeed(scope); err != nil {
		_ = cfg.tr.Close()
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	empty := map[string]*topicSubs{}
	n.recv.Store(&empty)
	n.catalog = n.catalogHashLocked()

	ep, err := n.tr.Listen((*nodeHandler)(n))
	if err != nil {
		n.cancel()
		_ = n.tr.Close()
		return nil, fmt.Errorf("colugo: transport: %w", err)
	}
	n.ep = ep
	if err := checkListen(n.addrs, ep); err != nil {
		n.cancel()
		_ = n.tr.Close()
		return nil, err
	}
	if n.seed != nil {
		if err := n.seed.start(); err != nil {
			n.cancel()
			_ = n.tr.Close()
			return nil, err
		}
	}
	events, err := n.disc.Start(n.self())
	if err != nil {
		n.cancel()
		if n.seed != nil {
			_ = n.seed.close()
		}
		_ = n.tr.Close()
		return nil, fmt.Errorf("colugo: discovery: %w", err)
	}
	var settled <-chan struct{}
	if st, ok := n.disc.(discovery.Settler); ok {
		settled = st.Settled()
	} else {
		close(n.settled) // it cannot tell: what it reports is all there is
	}
	n.wg.Go(func() { n.runDiscovery(events, settled) })
	n.log.Info("node started", slog.String(keyRouter, ep.Router), slog.String(keyPub, ep.Pub))
	return n, nil
}

func checkNodeName(name string) error {
	if name == "" || len(name) > 63 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: node name %q must be 1 to 63 bytes of UTF-8", ErrInvalidOption, name)
	}
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// ID returns the node's random, unique ID.
func (n *Node) ID() string { return n.id }

// Endpoint returns the addresses the node's transport listens on.
func (n *Node) Endpoint() transport.Endpoint { return n.ep }

func (n *Node) self() discovery.Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.selfLocked()
}

func (n *Node) selfLocked() discovery.Peer {
	return discovery.Peer{ID: n.id, Name: n.name, Router: dialable(n.ep.Router), Pub: dialable(n.ep.Pub), Catalog: n.catalog}
}

// dialable turns a wildcard listen address (0.0.0.0:p, [::]:p) into one
// that nodes on this host can dial; mDNS announces the interfaces'
// addresses itself and takes only the port from it.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Close stops the node: it withdraws the announcement, closes every
// subscription channel, fails requests in flight with ErrClosed, cancels
// running handlers' contexts and waits for every goroutine the node
// started, including handlers (so a handler that ignores its context delays
// Close; the node logs what it waits on after 5s). Close is idempotent and
// safe to call concurrently; later calls wait like the first and return nil.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.mu.Lock()
		n.reqMu.Lock() // serveRequest calls goLocked under reqMu, not mu
		// Under both: goLocked never starts a goroutine after this.
		n.closed.Store(true)
		n.reqMu.Unlock()
		n.mu.Unlock()
		err = n.disc.Close()
		n.cancel()
		if n.seed != nil { // its deliveries end before the subscriptions close
			if e := n.seed.close(); e != nil && err == nil {
				err = e
			}
		}
		n.mu.Lock()
		var all []*subCore
		for _, ss := range n.subs {
			all = append(all, ss...)
		}
		n.subs = map[string][]*subCore{}
		for ps := range n.patterns { // their channels
			all = append(all, ps.root)
		}
		n.patterns = nil
		n.mu.Unlock()
		for _, s := range all {
			s.close()
		}
		if e := n.tr.Close(); e != nil && err == nil {
			err = e
		}
		done := make(chan struct{})
		go func() { n.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWarnAfter):
			n.log.Warn("Close is waiting for request handlers that ignore their context", slog.Int64("handlers", n.handlers.Load()))
			<-done
		}
		n.log.Info("node closed")
	})
	n.wg.Wait()
	return err
}

func (n *Node) report(err error) {
	n.log.Debug("dropped", slog.Any(keyError, err))
	if n.cfg.onError != nil {
		n.cfg.onError(err)
	}
}

// goLocked runs f in a goroutine that Close waits for, unless the node is
// closed (then it reports false). n.mu is held, which orders it with Close.
func (n *Node) goLocked(f func()) bool {
	if !n.startLocked() {
		return false
	}
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// startLocked counts a goroutine the caller is about to start (it must call
// n.wg.Done), unless the node is closed; n.mu or n.reqMu is held.
func (n *Node) startLocked() bool {
	if n.closed.Load() {
		return false
	}
	n.wg.Add(1)
	return true
}

// nodeHandler is the Node as the transport sees it; a separate type keeps
// the transport callbacks out of the Node's method set.
type nodeHandler Node

func (h *nodeHandler) HandlePublish(msg *transport.Message) {
	n := (*Node)(h)
	if n.keys != nil || msg.Header.Flags&wire.FlagSealed != 0 {
		// msg is ours to modify for this call (transport.Handler).
		if err := n.openMsg(msg, binding{}); err != nil {
			return
		}
	}
	n.receive(msg)
}

func (h *nodeHandler) HandleRequest(msg *transport.Message, rw transport.ReplyWriter) {
	(*Node)(h).serveRequest(msg, rw)
}

func (h *nodeHandler) HandlePeerLost(addr string, err error) {
	n := (*Node)(h)
	n.log.Debug("connection lost", slog.String(keyEndpoint, addr), slog.Any(keyError, err))
	n.peerLost(addr, err)
}

// Shutdown closes the node gracefully, as http.Server.Shutdown and nats'
// Drain do: it stops accepting new work, lets the work under way finish,
// sends what is queued, then closes. In order:
//
//  1. Requests that arrive from other nodes are refused with a
//     *RemoteError of code CodeUnavailable (requesters with other servers
//     to choose from can retry there); NewPublisher, Subscribe, Serve and
//     their variants on this node return an error that matches ErrClosed.
//     $describe is still answered, and requests this node makes (to
//     itself included) still work, so that running handlers can finish
//     their own calls.
//  2. It waits for running request handlers to return, and for their
//     replies to be queued.
//  3. It waits for the transport's send queues to empty (replies and
//     messages published so far reach their connections), when the
//     transport implements [transport.Flusher], as transport/zmq and
//     transport/inproc do. A publisher that keeps publishing keeps the
//     queues busy: stop publishing first.
//  4. It calls [Node.Close].
//
// When ctx ends first, Shutdown calls Close at once (cancelling the
// handlers still running and dropping what is still queued) and returns
// ctx's error; otherwise it returns Close's. Values already queued for this
// node's own subscriptions are not waited for: their channels close with
// the node. Shutdown after Close returns nil at once.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.closed.Load() {
		return n.Close()
	}
	n.draining.Store(true)
	for n.handlers.Load() > 0 {
		select {
		case <-n.idle:
		case <-ctx.Done():
			_ = n.Close()
			return ctx.Err()
		}
	}
	if f, ok := n.tr.(transport.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			_ = n.Close()
			return err
		}
	}
	return n.Close()
}

// handlerDone counts the end of a request handler, and wakes Shutdown
// when it was the last one.
func (n *Node) handlerDone() {
	if n.handlers.Add(-1) == 0 && n.draining.Load() {
		select {
		case n.idle <- struct{}{}:
		default:
		}
	}
}

// acceptingLocked returns the error for new publishers, subscriptions and
// servers on a closed or shutting-down node; n.mu is held.
func (n *Node) acceptingLocked() error {
	if n.closed.Load() {
		return ErrClosed
	}
	if n.draining.Load() {
		return errShuttingDown
	}
	return nil
}

var errShuttingDown = fmt.Errorf("%w: the node is shutting down", ErrClosed)
