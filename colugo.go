package colugo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/seal"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Version is the colugo version a node reports in $describe.
const Version = "0.1.0"

// describeService is the control request every node answers with its
// PeerInfo as JSON.
const describeService = "$describe"

// Timing of the node's own housekeeping.
const (
	describeTimeout = 2 * time.Second
	// localProbeTimeout bounds the check that a peer's same-host address
	// reaches it (a Unix socket answers in microseconds, or not at all).
	localProbeTimeout = 300 * time.Millisecond
	refreshInterval   = time.Second            // re-describes peers that discovery cannot tell about changes (static seeds) or that failed
	tailInterval      = 500 * time.Millisecond // tail markers for topics whose latest publish a subscriber missed (sendTails)
	tailQuiet         = 50 * time.Millisecond  // ... that have not been published on for this long
	closeWarnAfter    = 5 * time.Second
)

// Node is one participant: it publishes and subscribes to topics, serves
// and calls services, and finds its peers through discovery. Create it with
// NewNode and Close it when done. A Node is safe for concurrent use.
type Node struct {
	name, id string
	cfg      nodeConfig
	log      *slog.Logger
	tr       transport.Transport
	ep       transport.Endpoint
	disc     discovery.Discovery

	addrs       addrCheck     // which addresses the node may dial (env.go)
	addrRefused atomic.Uint64 // addresses not dialled by that policy

	ctx    context.Context // the node's lifetime; its goroutines and handlers watch it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	// recv maps a topic to its local subscriptions. It is replaced, never
	// modified, so the receive path reads it without a lock.
	recv atomic.Pointer[map[string]*topicSubs]

	handlers atomic.Int64 // running request handlers

	keys         *seal.Keyring // nil: nothing sealed
	guard        *seal.Guard   // replay checks; nil without a key
	authFailures atomic.Uint64
	reqSeq       atomic.Uint64 // sequence of this node's requests and control requests, for replay checks
	lastSend     atomic.Int64  // send time of the last request (sendClock)
	eventsDrops  atomic.Uint64 // events dropped by Events watchers that fell behind

	mu       sync.Mutex
	subs     map[string][]*subCore // local subscriptions by topic
	pubs     map[string]*pubCount  // local publishers by topic
	seqs     map[string]*pubSeq    // sequence per topic, outliving its publishers
	services map[string]*serviceCore
	counters map[string]*counters // per topic
	svcStats map[string]*counters // per service
	peers    map[string]*peer     // by discovery key
	rr       map[string]uint64    // round-robin position per service
	changed  chan struct{}        // closed and replaced when the peer catalog changes
	catalog  string               // hash of pubs and services
	watchers map[*watcher]struct{}
	targets  map[string][]target // servers per service, rebuilt after any change

	// served is a copy of services for the request path, replaced (under
	// mu) when a service comes or goes, so that serving a request takes no
	// node-wide lock.
	served atomic.Pointer[map[string]*serviceCore]
	// reqMu guards the running handlers; it is the request path's own lock.
	reqMu    sync.Mutex
	inflight map[inflightKey]*handlerCtx
	watched  map[transport.ReplyWriter]bool // requester connections watched for loss
}

type pubCount struct {
	info TopicInfo
	n    int
	// seq numbers the node's messages on the topic, all its publishers
	// together: the header's sender is the node, so one sequence per node
	// and topic is what receivers can follow without false gaps.
	seq *pubSeq
}

// pubSeq is a topic's publish sequence. With a key, mu is held from taking
// a number to handing the sealed message to the transport, so that the
// numbers reach each connection in order (a receiver's replay window then
// sees no reorder), whatever the number of goroutines publishing.
type pubSeq struct {
	atomic.Uint64
	mu sync.Mutex

	// tail says the topic's latest publish was missed by a subscriber
	// connection: tail markers go out until one, or a publish, reaches
	// every connection. slow is the ErrSlowConsumer episode.
	tail, slow atomic.Bool
	// sent is the send time of the latest publish.
	sent atomic.Int64
	// waiting counts sealed publishes that hold mu while the transport may
	// wait for back-pressure (WithBackPressure): $describe does not wait
	// for those (baseline).
	waiting atomic.Int32
}

// baseline is the sequence number up to which every sealed publish of the
// topic has been handed to the transport, for $describe's seqs. It takes mu,
// except while a back-pressured publish holds it (possibly for its maxWait):
// then all but the latest number were handed, so it says one less, which
// lets a subscriber that described meanwhile accept that one message
// rather than stall the reply.
func (q *pubSeq) baseline() uint64 {
	if q.waiting.Load() == 0 {
		q.mu.Lock()
	} else if !q.mu.TryLock() {
		return max(q.Load(), 1) - 1
	}
	defer q.mu.Unlock()
	return q.Load()
}

// inflightKey names a running handler by the connection its request came
// on and the request id, which is unique only per connection: so a cancel
// is taken only from that connection (the transport sends cancels
// unsealed, and another peer could claim the sender id).
type inflightKey struct {
	rw transport.ReplyWriter // comparable in both transports: one value per connection
	id uint64
}

// topicSubs is an immutable snapshot of one topic's local subscriptions.
type topicSubs struct {
	subs []*subCore
	c    *counters
}

// peer is a node found by discovery, with what $describe told about it.
type peer struct {
	key        string
	info       discovery.Peer
	desc       *PeerInfo // nil until described
	pubAddr    string    // where to subscribe
	dialRouter string    // where to send requests: Router, or LocalRouter when reachable
	describing bool
	again      bool            // describe again when the current one ends
	down       bool            // a request to it failed; skipped until described again
	self       bool            // a seed that turned out to be this node
	dup        bool            // the same node as another peer entry (found twice)
	announced  bool            // Joined was emitted to Events watchers
	checking   bool            // a liveness check is running
	lost       bool            // stopped answering: reported Left, asked again by refresh
	subscribed map[string]bool // topic -> back-pressure asked
}

// PeerInfo describes a node: what $describe returns and Peers lists.
type PeerInfo struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Version       string      `json:"version"`
	Router        string      `json:"router"`
	Pub           string      `json:"pub"`
	LocalRouter   string      `json:"local_router,omitempty"` // same-host only (Unix socket): preferred when reachable
	LocalPub      string      `json:"local_pub,omitempty"`
	Topics        []TopicInfo `json:"topics"`        // published
	Subscriptions []TopicInfo `json:"subscriptions"` // subscribed
	Services      []TopicInfo `json:"services"`      // served
	// Drops is what the node had lost as a publisher when it was
	// described, nil when nothing: for tools (colugo doctor).
	Drops *PublisherDrops `json:"drops,omitempty"`
}

// PublisherDrops is a publishing node's count of what its subscribers
// missed, as its $describe tells.
type PublisherDrops struct {
	// Topics holds TopicStats.Missed of the topics with misses.
	Topics map[string]uint64 `json:"topics,omitempty"`
	// Subscribers lists the subscriber connections that missed messages
	// (at most maxDropRows), from the transport's Stats.
	Subscribers []transport.SubscriberStats `json:"subscribers,omitempty"`
}

// maxDropRows bounds the subscriber connections a $describe lists, sent or
// taken.
const maxDropRows = 64

// TopicInfo names a topic or service with its codec and type. For a
// service, Type is the request's and ReplyType the reply's. Schema (and
// ReplySchema) is the codec's description of the type when it has one
// (codec.Describer: protobuf gives a FileDescriptorSet), so tools can
// decode without the program's types.
type TopicInfo struct {
	Name        string `json:"name"`
	Codec       string `json:"codec"`
	Type        string `json:"type"`
	Schema      []byte `json:"schema,omitempty"`
	ReplyType   string `json:"reply_type,omitempty"`
	ReplySchema []byte `json:"reply_schema,omitempty"`
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
	cfg := nodeConfig{defaultTimeout: 5 * time.Second, codec: codec.JSON{}, maxHandlers: 1024, sealing: defaultSealing}
	for _, o := range opts {
		if o != nil {
			o.applyNode(&cfg)
		}
	}
	if cfg.codec == nil || cfg.defaultTimeout <= 0 || cfg.maxHandlers <= 0 {
		return nil, fmt.Errorf("%w: codec, default timeout and max handlers must be set", ErrInvalidOption)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	inProcess := false
	if ip, ok := cfg.tr.(transport.InProcessTransport); ok {
		inProcess = ip.InProcess()
	}
	var addrs addrCheck
	if !inProcess {
		d, scope, err := discoveryFromEnv(cfg.disc)
		if err != nil {
			return nil, err
		}
		cfg.disc = d
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
		rr:       make(map[string]uint64),
		changed:  make(chan struct{}),
		inflight: make(map[inflightKey]*handlerCtx),
		watched:  make(map[transport.ReplyWriter]bool),
		watchers: make(map[*watcher]struct{}),
		targets:  make(map[string][]target),
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
	events, err := n.disc.Start(n.self())
	if err != nil {
		n.cancel()
		_ = n.tr.Close()
		return nil, fmt.Errorf("colugo: discovery: %w", err)
	}
	n.wg.Go(func() { n.runDiscovery(events) })
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
		n.mu.Lock()
		var all []*subCore
		for _, ss := range n.subs {
			all = append(all, ss...)
		}
		n.subs = map[string][]*subCore{}
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

// catalogHashLocked summarises what peers learn from $describe, so they
// re-read it when it changes.
func (n *Node) catalogHashLocked() string {
	var lines []string
	for _, p := range n.pubs {
		lines = append(lines, "t\x00"+p.info.Name+"\x00"+p.info.Codec+"\x00"+p.info.Type)
	}
	for _, s := range n.services {
		lines = append(lines, "s\x00"+s.info.Name+"\x00"+s.info.Codec+"\x00"+s.info.Type)
	}
	for t, ss := range n.subs { // peers count subscribers (Publisher.Subscribers)
		lines = append(lines, "u\x00"+t+"\x00"+strconv.Itoa(len(ss)))
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// catalogChanged re-announces the node after its publishers or services
// changed. Called without n.mu.
func (n *Node) catalogChanged() {
	n.mu.Lock()
	n.catalog = n.catalogHashLocked()
	self := n.selfLocked()
	n.mu.Unlock()
	if n.closed.Load() {
		return
	}
	if err := n.disc.Update(self); err != nil {
		n.log.Warn("discovery update failed", slog.Any(keyError, err))
	}
}

// description is what $describe returns: a PeerInfo and, from a keyed
// node, each topic's publish sequence number at the time (seqs), which a
// peer takes as the baseline of its replay checks (seal.Guard.Describe).
type description struct {
	PeerInfo
	Seqs map[string]uint64 `json:"seqs,omitempty"`
}

// describeJSON is the payload of this node's $describe reply.
func (n *Node) describeJSON() ([]byte, error) {
	d := description{PeerInfo: n.describe()}
	if n.keys != nil {
		n.mu.Lock()
		seqs := maps.Clone(n.seqs)
		n.mu.Unlock()
		// Not under n.mu: a back-pressured publish holds its topic's lock
		// while the transport waits (up to its maxWait), which must not
		// stall the node.
		d.Seqs = make(map[string]uint64, len(seqs))
		for t, s := range seqs {
			// Under the topic's lock: every publish numbered up to the
			// value read has been handed to the transport, so none can
			// reach a subscription made after this reply.
			d.Seqs[t] = s.baseline()
		}
	}
	return json.Marshal(d)
}

// describe returns what this node tells peers about itself.
func (n *Node) describe() PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	info := PeerInfo{ID: n.id, Name: n.name, Version: Version, Router: n.ep.Router, Pub: n.ep.Pub,
		LocalRouter: n.ep.LocalRouter, LocalPub: n.ep.LocalPub,
		Topics: []TopicInfo{}, Subscriptions: []TopicInfo{}, Services: []TopicInfo{}}
	for _, p := range n.pubs {
		info.Topics = append(info.Topics, p.info)
	}
	for _, ss := range n.subs {
		for _, s := range ss {
			info.Subscriptions = append(info.Subscriptions, s.info)
		}
	}
	for _, s := range n.services {
		info.Services = append(info.Services, s.info)
	}
	info.Drops = n.dropsLocked()
	byName := func(a, b TopicInfo) int { return cmpString(a.Name, b.Name) }
	slices.SortFunc(info.Topics, byName)
	slices.SortFunc(info.Subscriptions, byName)
	slices.SortFunc(info.Services, byName)
	return info
}

// dropsLocked is what describe tells of this node's publisher-side losses.
func (n *Node) dropsLocked() *PublisherDrops {
	var d PublisherDrops
	for name, c := range n.counters {
		if m := c.missed.Load(); m > 0 {
			if d.Topics == nil {
				d.Topics = map[string]uint64{}
			}
			d.Topics[name] = m
		}
	}
	for _, s := range n.tr.Stats().Subscribers {
		if s.Dropped > 0 && len(d.Subscribers) < maxDropRows {
			d.Subscribers = append(d.Subscribers, s)
		}
	}
	if d.Topics == nil && d.Subscribers == nil {
		return nil
	}
	return &d
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Peers returns the nodes this node has found and described, sorted by name
// then ID. It does not include the node itself.
func (n *Node) Peers() []PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []PeerInfo
	for _, p := range n.peers {
		if p.visible() {
			out = append(out, *p.desc)
		}
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		if c := cmpString(a.Name, b.Name); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
	return out
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

// notifyChangedLocked wakes requests waiting for a replier.
func (n *Node) notifyChangedLocked() {
	clear(n.targets)
	close(n.changed)
	n.changed = make(chan struct{})
}

// runDiscovery applies discovery events and periodically re-describes peers
// whose changes discovery cannot report.
func (n *Node) runDiscovery(events <-chan discovery.Event) {
	tick := time.NewTicker(refreshInterval)
	defer tick.Stop()
	tails := time.NewTicker(tailInterval)
	defer tails.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			n.onEvent(ev)
		case <-tick.C:
			n.refresh()
		case <-tails.C:
			n.sendTails()
		case <-n.ctx.Done():
			return
		}
	}
}

func (n *Node) onEvent(ev discovery.Event) {
	if ev.Peer.ID == n.id {
		return
	}
	key := ev.Peer.Key()
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev.Kind {
	case discovery.Joined, discovery.Updated:
		p := n.peers[key]
		if bad := n.refusedFound(ev.Peer); bad != "" {
			n.refuse(bad, fromDiscovery, ev.Peer.Name)
			if p != nil { // moved somewhere it may not be reached: gone for us
				n.removePeerLocked(p)
			}
			return
		}
		if p == nil {
			p = &peer{key: key, subscribed: make(map[string]bool)}
			n.peers[key] = p
			n.log.Info("peer found", slog.String(keyPeer, ev.Peer.Name), slog.String(keyRouter, ev.Peer.Router))
		} else if p.info.Router != ev.Peer.Router || p.info.Pub != ev.Peer.Pub {
			n.forgetLocked(p) // moved: what we had with the old addresses is stale
			p.desc = nil
		}
		stale := p.desc == nil || ev.Peer.Catalog == "" || ev.Peer.Catalog != p.info.Catalog
		p.info = ev.Peer
		if stale {
			n.describeLocked(p)
		}
	case discovery.Left:
		p := n.peers[key]
		if p == nil {
			return
		}
		if p.desc != nil && n.guard != nil {
			n.guard.Forget(p.desc.ID) // described again if it comes back
		}
		n.removePeerLocked(p)
		n.log.Info("peer left", slog.String(keyPeer, ev.Peer.Name), slog.String(keyRouter, ev.Peer.Router))
	}
}

// forgetLocked drops subscriptions to p and fails requests in flight to it.
func (n *Node) forgetLocked(p *peer) {
	for t := range p.subscribed {
		_ = n.tr.Unsubscribe(p.pubAddr, t)
	}
	clear(p.subscribed)
	if p.pubAddr != "" {
		n.tr.Disconnect(p.pubAddr)
	}
	n.tr.Disconnect(p.info.Router)
	if p.dialRouter != "" && p.dialRouter != p.info.Router {
		n.tr.Disconnect(p.dialRouter)
	}
}

func (n *Node) refresh() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if !p.self && (p.desc == nil || p.down || p.lost || p.info.Catalog == "") {
			n.describeLocked(p)
		}
	}
}

// describeLocked asks p for its $describe in the background; one at a time
// per peer.
func (n *Node) describeLocked(p *peer) {
	if n.closed.Load() {
		return
	}
	if p.describing {
		p.again = true
		return
	}
	p.describing = true
	router := p.info.Router
	n.goLocked(func() {
		for {
			info, err := n.fetchDescription(router)
			local := ""
			if err == nil && info.LocalRouter != "" && !n.addrs.allowed(info.LocalRouter, fromDescribe, router) {
				n.refuse(info.LocalRouter, fromDescribe, info.Name)
			} else if err == nil && info.LocalRouter != "" {
				// Same host? Then the local address answers, as the same node.
				if li, lerr := n.fetchDescriptionFrom(info.LocalRouter, info.ID, localProbeTimeout); lerr == nil && li.ID == info.ID {
					local = info.LocalRouter
				}
			}
			n.mu.Lock()
			if n.peers[p.key] != p {
				n.mu.Unlock()
				return
			}
			if err != nil {
				n.log.Debug("describe failed", slog.String(keyRouter, router), slog.Any(keyError, err))
			} else {
				n.applyDescriptionLocked(p, info, local)
			}
			if !p.again || n.closed.Load() {
				p.describing = false
				n.mu.Unlock()
				return
			}
			p.again = false
			n.mu.Unlock()
		}
	})
}

func (n *Node) fetchDescription(router string) (*PeerInfo, error) {
	return n.fetchDescriptionTimeout(router, describeTimeout)
}

func (n *Node) fetchDescriptionTimeout(router string, timeout time.Duration) (*PeerInfo, error) {
	return n.fetchDescriptionFrom(router, "", timeout)
}

// fetchDescriptionFrom asks the router for its $describe. id is the node
// expected there, to which a sealed request is bound ("": not known, or
// not certain: the address may belong to another node by now).
func (n *Node) fetchDescriptionFrom(router, id string, timeout time.Duration) (*PeerInfo, error) {
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()
	seq := n.reqSeq.Add(1)
	req := &transport.Message{Name: describeService, Header: wire.Header{
		Kind: transport.KindControl, Codec: "json", Sender: n.id, SendTime: n.sendClock(),
		Deadline: int64(timeout), Seq: seq,
	}}
	n.sealMsg(req, binding{peer: id})
	rep, err := n.tr.Request(ctx, router, req)
	if err != nil {
		return nil, err
	}
	if err = n.openMsg(rep, binding{peer: n.id, seq: seq}); err != nil {
		return nil, err
	}
	if rep.Header.Status != 0 {
		return nil, &RemoteError{Service: describeService, Code: Code(rep.Header.Status), Message: rep.Header.Error}
	}
	info, err := decodeDescription(rep.Payload)
	if err != nil || n.guard == nil || info.ID == n.id {
		return info, err
	}
	// The reply is bound to this request, so it is fresh: its sequence
	// numbers are the sender's baseline (before this node subscribes).
	var d description
	if err := json.Unmarshal(rep.Payload, &d); err != nil {
		return nil, fmt.Errorf("colugo: bad $describe reply: %w", err)
	}
	n.guard.Describe(info.ID, d.Seqs)
	return info, nil
}

// applyDescriptionLocked records what p's $describe said. local is its
// LocalRouter when that answered, else "".
func (n *Node) applyDescriptionLocked(p *peer, info *PeerInfo, local string) {
	p.self = info.ID == n.id
	if p.self {
		return
	}
	if p.info.ID != "" && info.ID != p.info.ID {
		// The address discovery gave now belongs to another node (a stale
		// entry, or an address only valid on the announcer's host).
		n.log.Debug("peer address answered with another id", slog.String(keyRouter, p.info.Router),
			slog.String("want", p.info.ID), slog.String("got", info.ID))
		p.down = true
		return
	}
	old := p.desc
	p.desc, p.down, p.lost = info, false, false
	pubAddr, dialRouter := pubAddress(p.info, info), p.info.Router
	if src := pubSource(p.info); pubAddr != "" && !n.addrs.allowed(pubAddr, src, p.info.Router) {
		n.refuse(pubAddr, src, info.Name)
		pubAddr = "" // requests still work; nothing is subscribed to
	}
	if local != "" && info.LocalPub != "" {
		if n.addrs.allowed(info.LocalPub, fromDescribe, p.info.Router) {
			pubAddr, dialRouter = info.LocalPub, local
		} else {
			n.refuse(info.LocalPub, fromDescribe, info.Name)
		}
	}
	if p.pubAddr != "" && p.pubAddr != pubAddr { // moved (say, to the Unix socket): resubscribe there
		for t := range p.subscribed {
			_ = n.tr.Unsubscribe(p.pubAddr, t)
		}
		clear(p.subscribed)
		n.tr.Disconnect(p.pubAddr)
	}
	p.pubAddr, p.dialRouter = pubAddr, dialRouter
	p.dup = false
	for _, o := range n.peers {
		if o != p && o.desc != nil && o.desc.ID == info.ID && !o.dup {
			p.dup = true // found twice (two discovery mechanisms): use the first
		}
	}
	n.syncPeerLocked(p)
	n.notifyChangedLocked()
	switch {
	case !p.visible():
	case !p.announced:
		p.announced = true
		n.emitLocked(discovery.Joined, *info)
	case old == nil || !sameCatalog(old, info):
		n.emitLocked(discovery.Updated, *info)
	}
}

// sameCatalog compares two descriptions but for their drop counts, which
// are no reason for an Updated event.
func sameCatalog(a, b *PeerInfo) bool {
	x, y := *a, *b
	x.Drops, y.Drops = nil, nil
	return reflect.DeepEqual(x, y)
}

// pubSource says where pubAddress took its address from.
func pubSource(found discovery.Peer) string {
	if found.Pub != "" {
		return fromDiscovery
	}
	return fromDescribe
}

// refusedFound returns the first address of a discovered peer that the node
// may not dial, or "".
func (n *Node) refusedFound(p discovery.Peer) string {
	for _, a := range []string{p.Router, p.Pub} {
		if a != "" && !n.addrs.allowed(a, fromDiscovery, p.Router) {
			return a
		}
	}
	return ""
}

// pubAddress is where to subscribe to a peer: the address discovery gave,
// else the described port on the host discovery reached the router at (the
// peer may not know which of its addresses we can reach). Either is then
// checked by addrCheck.allowed.
func pubAddress(found discovery.Peer, info *PeerInfo) string {
	if found.Pub != "" {
		return found.Pub
	}
	host, _, err1 := net.SplitHostPort(found.Router)
	_, port, err2 := net.SplitHostPort(info.Pub)
	if err1 != nil || err2 != nil {
		return info.Pub
	}
	return net.JoinHostPort(host, port)
}

// syncPeerLocked makes the subscriptions to p match what p publishes and
// what this node subscribes to, with back-pressure asked for the topics
// that have a Block subscription (p.subscribed holds what was asked).
func (n *Node) syncPeerLocked(p *peer) {
	want := map[string]bool{}
	if p.visible() && p.pubAddr != "" { // "": its publisher address was refused
		for _, t := range p.desc.Topics {
			if len(n.subs[t.Name]) > 0 {
				want[t.Name] = n.backPressureLocked(t.Name)
			}
		}
	}
	for t, bp := range want {
		if had, ok := p.subscribed[t]; !ok || had != bp {
			if err := n.tr.Subscribe(p.pubAddr, t, transport.SubscribeOptions{BackPressure: bp}); err != nil {
				n.log.Warn("subscribe failed", slog.String(keyTopic, t), slog.String(keyPeer, p.info.Name), slog.Any(keyError, err))
				continue
			}
			p.subscribed[t] = bp
		}
	}
	for t := range p.subscribed {
		if _, ok := want[t]; !ok {
			_ = n.tr.Unsubscribe(p.pubAddr, t)
			delete(p.subscribed, t)
		}
	}
}

// sendTails sends a tail marker on every topic whose latest publish a
// subscriber connection missed and that has not been published on for a
// while (a later publish's seq tells subscribers of the gap anyway, and a
// marker must not overtake the publish whose number it carries), so that a
// subscriber whose stream stopped learns of the lost tail. The markers go
// on, one per tick, until one reaches every connection.
func (n *Node) sendTails() {
	type due struct {
		topic string
		seq   *pubSeq
	}
	var dues []due
	quiet := time.Now().Add(-tailQuiet).UnixNano()
	n.mu.Lock()
	for t, q := range n.seqs {
		if q.tail.Load() && q.sent.Load() < quiet {
			dues = append(dues, due{t, q})
		}
	}
	n.mu.Unlock()
	for _, d := range dues {
		msg := &transport.Message{Name: d.topic, Header: wire.Header{Kind: transport.KindPublish, Flags: wire.FlagTail, Sender: n.id}}
		if !d.seq.mu.TryLock() { // with a key: in sequence order with the sealed publishes
			continue // a publish of the topic is under way (perhaps waiting for back-pressure): it tells the tail, or the next round does
		}
		msg.Header.Seq, msg.Header.SendTime = d.seq.Load(), time.Now().UnixNano()
		n.sealMsg(msg, binding{})
		res, err := n.tr.Publish(context.Background(), msg, transport.PublishOptions{})
		d.seq.mu.Unlock()
		if err == nil && res.Dropped == 0 {
			d.seq.tail.Store(false)
		}
	}
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

// markDown records that a request to router failed for want of a peer.
func (n *Node) markDown(router string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if p.info.Router == router || p.dialRouter == router {
			p.down = true
		}
	}
	clear(n.targets)
}
