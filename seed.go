package colugo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/mdns"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// SeedConfig configures seed compatibility (WithSeedCompat): how a node
// finds and speaks to nodes of the Python colugo, the seed.
type SeedConfig struct {
	// Directory finds seed sockets and announces this node's seed-visible
	// ones. Nil: mDNS on the seed's service type (discovery/mdns'
	// NewSeedDirectory) on Interfaces, which needs a node on the network:
	// a node kept off it (COLUGO_DISCOVERY=local, none or static) refuses
	// seed compatibility without an explicit Directory.
	Directory discovery.SeedDirectory
	// Interfaces are the network interfaces of the default Directory
	// (empty: every multicast interface).
	Interfaces []string
	// ReplyBudget bounds how long a seed client's request may take: past
	// it, the client gets ErrorReply. A seed request client that gets no
	// answer within its own 2 s stays dead until a new server appears, so
	// a seed client is always answered. Zero means 1.5 s.
	ReplyBudget time.Duration
	// ErrorReply is what a seed client gets when the handler fails,
	// overruns or replies with bytes the seed cannot read (not UTF-8).
	// Default: empty. It must be valid UTF-8.
	ErrorReply []byte
	// AllowPlaintext lets a node with a network key (WithKey) be seed
	// compatible: the seed cannot seal, so its seed-visible topics and
	// services, and what it receives from seed nodes, travel in plaintext
	// and unauthenticated. Without it such a node refuses seed
	// compatibility (ErrInvalidOption).
	AllowPlaintext bool
}

// DefaultSeedReplyBudget is SeedConfig.ReplyBudget's default: below the
// seed request client's 2 s timeout.
const DefaultSeedReplyBudget = 1500 * time.Millisecond

// MaxSeedName is the longest topic or service name the seed can carry:
// python-zeroconf limits an instance name to 63 bytes, of which the seed's
// _<name>._<36-byte uuid> leaves 24 for the name.
const MaxSeedName = 24

// WithSeedCompat makes the node join networks of the Python colugo (the
// seed): it finds seed publishers and reply servers, whose topics and
// services then join Subscribe, Request and RequestAll like colugo nodes'
// (round robin included), and it makes the topics and services created
// with SeedVisible visible to seed nodes. The node's transport must speak
// the seed's frames (transport/zmq does). See the README's "Mixed networks
// with the Python colugo" for what crosses and what does not.
func WithSeedCompat(cfg SeedConfig) NodeOption { return seedOption{&cfg} }

type seedOption struct{ c *SeedConfig }

func (o seedOption) applyNode(c *nodeConfig) { c.seed = o.c }
func (o seedOption) String() string {
	b := o.c.ReplyBudget
	if b == 0 {
		b = DefaultSeedReplyBudget
	}
	dir := "mDNS"
	if o.c.Directory != nil {
		dir = fmt.Sprintf("%T", o.c.Directory)
	}
	return fmt.Sprintf("WithSeedCompat(directory %s, reply budget %v, plaintext allowed %t)", dir, b, o.c.AllowPlaintext)
}

// SeedVisible makes a publisher's messages, or a service, visible to seed
// nodes on a node with WithSeedCompat: it is announced as the seed
// announces its own sockets and speaks the seed's frames on a port of its
// own. The name must be one the seed can carry (at most MaxSeedName bytes
// of letters, digits, '.', '/' and '-'; no '_'), and what is sent must be
// valid UTF-8 (JSON, or Raw text): the seed stops receiving on anything
// else, so other payloads are refused and counted (Stats().Seed.Refused),
// never sent.
func SeedVisible() SeedVisibleOption { return seedVisibleOption{} }

// SeedVisibleOption is valid on a publisher and on a server.
type SeedVisibleOption interface {
	PublisherOption
	ServeOption
}

type seedVisibleOption struct{}

func (seedVisibleOption) applyPublisher(c *topicConfig) { c.seedVisible = true }
func (seedVisibleOption) applyServe(c *topicConfig)     { c.seedVisible = true }
func (seedVisibleOption) String() string                { return "SeedVisible()" }

// checkSeedName reports why the seed cannot carry name, if it cannot.
func checkSeedName(name string) error {
	if name == "" || len(name) > MaxSeedName {
		return fmt.Errorf("%w: %q cannot be seed-visible: the seed carries names of 1 to %d bytes", ErrInvalidOption, name, MaxSeedName)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '/' || c == '-') {
			return fmt.Errorf("%w: %q cannot be seed-visible: the seed carries letters, digits, '.', '/' and '-' only (it splits its records on '_')", ErrInvalidOption, name)
		}
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %q cannot be seed-visible: a dot is a DNS label boundary in the seed's records, so no empty label", ErrInvalidOption, name)
	}
	return nil
}

// SeedStats counts seed compatibility's traffic (WithSeedCompat).
type SeedStats struct {
	// Sockets is the number of seed sockets (publishers and reply
	// servers of seed nodes) known now.
	Sockets int
	// Connected is the number of seed publishers this node is subscribed
	// to now: those of the topics it subscribes to.
	Connected int
	// Received counts messages from seed publishers that reached this
	// node's subscriptions; Sent, messages sent to seed subscribers
	// (counted once per message, whatever the number of subscribers).
	Received, Sent uint64
	// Refused counts payloads not sent to seed nodes because they were
	// not valid UTF-8 (messages, requests and replies), and replies a
	// seed client got as the error reply (handler error or overrun).
	Refused uint64
	// Served counts requests of seed clients answered; Requests, requests
	// this node sent to seed reply servers.
	Served, Requests uint64
}

// seedNode is a node's seed compatibility.
type seedNode struct {
	n   *Node
	cfg SeedConfig
	dir discovery.SeedDirectory
	tr  transport.SeedTransport

	syncMu sync.Mutex // serialises syncTopic: its read of n.subs and its changes
	mu     sync.Mutex
	// sockets are the seed sockets known, by instance name.
	sockets map[string]discovery.SeedSocket
	// conns are the subscriptions to seed publishers, by instance name.
	conns   map[string]seedConn
	closed  bool
	stopped chan struct{} // closed when the event loop returns

	// pubMu guards pubs, and is held while a seed-visible topic is set up
	// (its listener, its record): not sn.mu, which the request path takes.
	pubMu sync.Mutex
	pubs  map[string]*seedPub // this node's seed-visible topics

	received, sent, refused, served, requests atomic.Uint64
}

// seedConn is a subscription to one seed publisher.
type seedConn struct {
	topic string
	stop  func()
}

// seedPub is one seed-visible topic of this node: its listener and record,
// shared by its SeedVisible publishers.
type seedPub struct {
	p        transport.SeedPublisher
	withdraw func() error
	users    int
}

// maxSeedSockets bounds the seed sockets a node tracks, whatever a network
// announces.
const maxSeedSockets = 4096

// setupSeed checks seed compatibility's configuration and makes its
// state; the node has its transport, key and discovery scope.
func (n *Node) setupSeed(scope Scope) error {
	c := n.cfg.seed
	if c == nil {
		return nil
	}
	tr, ok := n.tr.(transport.SeedTransport)
	if !ok {
		return fmt.Errorf("%w: seed compatibility: the transport (%T) does not speak the seed's frames", ErrInvalidOption, n.tr)
	}
	if n.keys != nil && !c.AllowPlaintext {
		return fmt.Errorf("%w: seed compatibility: the seed cannot seal, and this node has a network key: set SeedConfig.AllowPlaintext to let its seed-visible names travel in plaintext", ErrInvalidOption)
	}
	if c.ReplyBudget < 0 || !utf8.Valid(c.ErrorReply) {
		return fmt.Errorf("%w: seed compatibility: ReplyBudget must not be negative and ErrorReply must be UTF-8", ErrInvalidOption)
	}
	cfg := *c
	if cfg.ReplyBudget == 0 {
		cfg.ReplyBudget = DefaultSeedReplyBudget
	}
	cfg.ErrorReply = slices.Clone(cfg.ErrorReply)
	dir := cfg.Directory
	if dir == nil {
		if !envAllowsMDNS() {
			return fmt.Errorf("%w: seed compatibility finds seed nodes with mDNS, but %s=%q has no mdns (or give SeedConfig.Directory)",
				ErrInvalidOption, EnvDiscovery, os.Getenv(EnvDiscovery))
		}
		if scope != ScopeNetwork {
			return fmt.Errorf("%w: seed compatibility finds seed nodes with mDNS, but this node's discovery keeps it off the network: give SeedConfig.Directory", ErrInvalidOption)
		}
		dir = mdns.NewSeedDirectory(mdns.WithInterfaces(cfg.Interfaces...), mdns.WithLogger(n.log))
	}
	n.seed = &seedNode{n: n, cfg: cfg, dir: dir, tr: tr, sockets: make(map[string]discovery.SeedSocket),
		conns: make(map[string]seedConn), pubs: make(map[string]*seedPub), stopped: make(chan struct{})}
	return nil
}

// envAllowsMDNS reports whether COLUGO_DISCOVERY, when set, names mdns:
// the operator's word on multicast holds for seed discovery too.
func envAllowsMDNS() bool {
	v, ok := os.LookupEnv(EnvDiscovery)
	if !ok || strings.TrimSpace(v) == "" {
		return true
	}
	for tok := range strings.SplitSeq(v, ",") {
		if strings.TrimSpace(tok) == "mdns" {
			return true
		}
	}
	return false
}

// start starts the directory and its event loop.
func (sn *seedNode) start() error {
	events, err := sn.dir.Start()
	if err != nil {
		close(sn.stopped)
		return fmt.Errorf("colugo: seed directory: %w", err)
	}
	go func() {
		defer close(sn.stopped)
		for ev := range events {
			sn.apply(ev)
		}
	}()
	return nil
}

// close withdraws this node's seed records and ends its seed connections;
// the transport's Close ends its seed listeners.
func (sn *seedNode) close() error {
	err := sn.dir.Close() // closes the event channel: the loop ends
	<-sn.stopped
	sn.mu.Lock()
	sn.closed = true
	conns := sn.conns
	sn.conns = map[string]seedConn{}
	sn.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
	return err
}

// apply follows one seed socket appearing or going.
func (sn *seedNode) apply(ev discovery.SeedEvent) {
	s := ev.Socket
	n := sn.n
	if s.Colugo { // a colugo-go node's: reached on colugo's own wire
		n.log.Debug("seed socket of a colugo-go node ignored", slog.String("instance", s.Instance))
		return
	}
	// A reply server's change and the end of the request rotations that
	// list it are one step under n.mu: once the socket is gone (as Stats
	// or SeedSockets see it), no request picks it, lock-free or not.
	rep := s.Kind == discovery.SeedRep
	if rep {
		n.mu.Lock()
		n.clearTargetsLocked()
	}
	sn.mu.Lock()
	_, known := sn.sockets[s.Instance]
	switch {
	case ev.Kind == discovery.Joined && !known && len(sn.sockets) < maxSeedSockets:
		sn.sockets[s.Instance] = s
	case ev.Kind == discovery.Left && known:
		s = sn.sockets[s.Instance]
		delete(sn.sockets, s.Instance)
	default:
		full := ev.Kind == discovery.Joined && !known
		sn.mu.Unlock()
		if rep {
			n.mu.Unlock()
		}
		if full {
			n.log.Debug("seed socket ignored: too many known", slog.String("instance", s.Instance))
		}
		return
	}
	sn.mu.Unlock()
	if rep {
		n.notifyChangedLocked() // wakes the requests waiting for a server of s.Topic
		n.mu.Unlock()
	}
	n.log.Debug("seed socket "+ev.Kind.String(), slog.String("instance", s.Instance), slog.String(keyTopic, s.Topic),
		slog.String("kind", s.Kind.String()), slog.String("addr", s.Addr))
	switch s.Kind {
	case discovery.SeedPub:
		if ev.Kind == discovery.Joined {
			// A topic the node learns of, as from a peer's $describe: the
			// pattern subscriptions it matches subscribe to it (and the
			// syncTopic below connects them all to this publisher).
			n.mu.Lock()
			n.matchPatternsLocked([]TopicInfo{{Name: s.Topic}})
			n.mu.Unlock()
		}
		sn.syncTopic(s.Topic)
	case discovery.SeedRep:
		if ev.Kind == discovery.Left {
			sn.tr.SeedDisconnect(s.Addr)
		}
	}
}

// syncTopic connects to the seed publishers of topic while this node
// subscribes to it, and disconnects from them when it no longer does.
func (sn *seedNode) syncTopic(topic string) {
	n := sn.n
	sn.syncMu.Lock()
	defer sn.syncMu.Unlock()
	n.mu.Lock()
	want := len(n.subs[topic]) > 0 && !n.closed.Load()
	n.mu.Unlock()
	var stops []func()
	sn.mu.Lock()
	if sn.closed {
		sn.mu.Unlock()
		return
	}
	for inst, c := range sn.conns {
		if _, known := sn.sockets[inst]; c.topic == topic && (!known || !want) {
			stops = append(stops, c.stop)
			delete(sn.conns, inst)
		}
	}
	if want {
		for inst, s := range sn.sockets {
			if _, on := sn.conns[inst]; on || s.Kind != discovery.SeedPub || s.Topic != topic {
				continue
			}
			sender := "seed:" + s.UUID
			stop, err := sn.tr.SeedSubscribe(s.Addr, func(payload []byte) { n.receiveSeed(topic, sender, payload) })
			if err != nil {
				n.log.Debug("seed subscribe failed", slog.String(keyTopic, topic), slog.String("addr", s.Addr), slog.Any(keyError, err))
				continue
			}
			sn.conns[inst] = seedConn{topic: topic, stop: stop}
		}
	}
	sn.mu.Unlock()
	for _, stop := range stops {
		stop() // waits for its deliveries: not under sn.mu
	}
}

// receiveSeed hands a seed publisher's message to this node's
// subscriptions of topic. The seed's frame is the payload alone: it is
// offered to each subscription as its own codec and type (nothing on the
// wire says otherwise), a payload that does not decode is a DecodeError
// as any other.
func (n *Node) receiveSeed(topic, sender string, payload []byte) {
	ts := (*n.recv.Load())[topic]
	if ts == nil {
		return
	}
	n.seed.received.Add(1)
	ts.c.received.Add(1)
	m := transport.Message{Name: topic, Header: wire.Header{Kind: transport.KindPublish, Sender: sender, SendTime: time.Now().UnixNano()},
		Payload: payload}
	for _, s := range ts.subs {
		m.Header.Codec, m.Header.Type = s.info.Codec, s.info.Type
		if s.anyCodec { // tools: the seed's frames are bytes, usually text
			m.Header.Codec, m.Header.Type = rawName, ""
		}
		s.offerChecked(&m, false, false, pubWait{}) // keeps nothing of m
	}
}

// addPub makes topic seed-visible for one more publisher.
func (sn *seedNode) addPub(topic string) (*seedPub, error) {
	sn.pubMu.Lock()
	defer sn.pubMu.Unlock()
	if sp := sn.pubs[topic]; sp != nil {
		sp.users++
		return sp, nil
	}
	p, err := sn.tr.SeedPublisher()
	if err != nil {
		return nil, fmt.Errorf("colugo: seed publisher of %q: %w", topic, err)
	}
	withdraw, err := sn.dir.Announce(topic, discovery.SeedPub, p.Port())
	if err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("colugo: announcing %q to seed nodes: %w", topic, err)
	}
	sp := &seedPub{p: p, withdraw: withdraw, users: 1}
	sn.pubs[topic] = sp
	return sp, nil
}

// releasePub is addPub's undo, when a seed-visible publisher closes.
func (sn *seedNode) releasePub(topic string, sp *seedPub) {
	sn.pubMu.Lock()
	if sp.users--; sp.users > 0 || sn.pubs[topic] != sp {
		sn.pubMu.Unlock()
		return
	}
	delete(sn.pubs, topic)
	sn.pubMu.Unlock()
	_ = sp.withdraw()
	_ = sp.p.Close()
}

// publish sends one encoded message to the seed subscribers of a
// seed-visible topic.
func (sn *seedNode) publish(sp *seedPub, payload []byte) {
	if _, _, err := sp.p.Publish(payload); err != nil {
		if errors.Is(err, transport.ErrNotUTF8) {
			sn.refused.Add(1)
		}
		return
	}
	sn.sent.Add(1)
}

// seedServer is one seed-visible service of this node.
type seedServer struct {
	s        transport.SeedServer
	withdraw func() error
}

// serve makes a service seed-visible: seed clients' requests run its
// handler, as colugo callers' do, within the reply budget.
func (sn *seedNode) serve(core *serviceCore) (*seedServer, error) {
	n := sn.n
	h := func(ctx context.Context, payload []byte) ([]byte, error) {
		n.reqMu.Lock()
		started := n.startLocked()
		n.reqMu.Unlock()
		if !started {
			return nil, ErrClosed
		}
		defer n.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer context.AfterFunc(n.ctx, cancel)()
		defer cancel()
		out, code, msg := n.run(ctx, core, payload, false)
		if code != 0 {
			sn.refused.Add(1)
			return nil, &CodedError{Code: code, Err: errors.New(msg)}
		}
		if !utf8.Valid(out) {
			sn.refused.Add(1)
			return nil, fmt.Errorf("%w: the reply is not UTF-8", transport.ErrNotUTF8)
		}
		sn.served.Add(1)
		return out, nil
	}
	s, err := sn.tr.SeedServe(h, transport.SeedServeOptions{Budget: sn.cfg.ReplyBudget, ErrorReply: sn.cfg.ErrorReply})
	if err != nil {
		return nil, fmt.Errorf("colugo: seed server of %q: %w", core.info.Name, err)
	}
	withdraw, err := sn.dir.Announce(core.info.Name, discovery.SeedRep, s.Port())
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("colugo: announcing %q to seed nodes: %w", core.info.Name, err)
	}
	return &seedServer{s: s, withdraw: withdraw}, nil
}

func (ss *seedServer) close() {
	_ = ss.withdraw()
	_ = ss.s.Close()
}

// seedTargets lists the seed reply servers of name, by address (a stable
// order, for a fair rotation). n.mu may be held: sn.mu is below it.
func (sn *seedNode) seedTargets(name string) []target {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	var ts []target
	for _, s := range sn.sockets {
		if s.Kind == discovery.SeedRep && s.Topic == name {
			ts = append(ts, target{seed: s.Addr, info: &PeerInfo{ID: "seed:" + s.UUID, Name: "seed", Router: s.Addr}})
		}
	}
	slices.SortFunc(ts, func(a, b target) int { return strings.Compare(a.seed, b.seed) })
	return ts
}

// pubTopics lists the topics of the seed publishers known (each once),
// for the pattern subscriptions to match. n.mu may be held.
func (sn *seedNode) pubTopics() []string {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	seen := make(map[string]bool)
	var ts []string
	for _, s := range sn.sockets {
		if s.Kind == discovery.SeedPub && !seen[s.Topic] {
			seen[s.Topic] = true
			ts = append(ts, s.Topic)
		}
	}
	return ts
}

// seedReplyType is the type name of a seed server's reply: the seed's
// wire names none, so the caller's type is taken on trust. No header can
// carry it (a NUL).
const seedReplyType = "\x00seed"

// sendSeed makes one request to a seed reply server.
func (n *Node) sendSeed(ctx context.Context, addr, codecName string, payload []byte) ([]byte, string, string, bool, error) {
	if !utf8.Valid(payload) {
		n.seed.refused.Add(1)
		return nil, "", "", false, fmt.Errorf("%w: a seed server reads UTF-8 only: %w", ErrInvalidOption, transport.ErrNotUTF8)
	}
	n.seed.requests.Add(1)
	out, err := n.seed.tr.SeedRequest(ctx, addr, payload)
	if err != nil {
		return nil, "", "", false, err
	}
	return out, codecName, seedReplyType, true, nil
}

// SeedSockets lists the seed sockets (publishers and reply servers of
// nodes of the Python colugo) this node knows, by topic then address; nil
// without WithSeedCompat. Tools show them beside colugo nodes.
func (n *Node) SeedSockets() []discovery.SeedSocket {
	if n.seed == nil {
		return nil
	}
	sn := n.seed
	sn.mu.Lock()
	out := slices.Collect(maps.Values(sn.sockets))
	sn.mu.Unlock()
	slices.SortFunc(out, func(a, b discovery.SeedSocket) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), strings.Compare(a.Addr, b.Addr), strings.Compare(a.Instance, b.Instance))
	})
	return out
}

func (sn *seedNode) stats() SeedStats {
	sn.mu.Lock()
	k, c := len(sn.sockets), len(sn.conns)
	sn.mu.Unlock()
	return SeedStats{Sockets: k, Connected: c, Received: sn.received.Load(), Sent: sn.sent.Load(), Refused: sn.refused.Load(),
		Served: sn.served.Load(), Requests: sn.requests.Load()}
}
