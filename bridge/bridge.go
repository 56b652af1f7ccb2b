package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/colugo-go/colugo"
)

// ErrClosed is returned by Run on a closed Bridge.
var ErrClosed = errors.New("bridge: closed")

// Bridge joins one colugo network (a site) to NATS, as one colugo node;
// see the package documentation. Create it with New, start it with Run and
// Close it when done. Its methods are safe for concurrent use.
type Bridge struct {
	node *colugo.Node
	cfg  Config
	id   string // the bridge id: its node's id
	nc   *nats.Conn
	js   jetstream.JetStream // nil unless an entry has JetStream

	st counters

	inflightExp chan struct{} // requests from NATS being served locally
	inflightImp chan struct{} // local requests being forwarded to NATS

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run
	cancel   context.CancelFunc
	running  bool
	closed   bool
	runDone  chan struct{}
	wg       sync.WaitGroup                  // goroutines Run started
	exported map[string]bool                 // topics with an export subscription
	expSvc   map[string][]*nats.Subscription // exported services' queue subscriptions
	pubs     map[pubKey]*colugo.Publisher[[]byte]
	servers  []*colugo.Server
	subs     []*nats.Subscription // topic import subscriptions
	stops    []func()             // limiters' stops
}

type pubKey struct{ topic, codec, typ string }

// New returns a bridge for node (the bridge's node: it publishes imported
// topics and serves imported services; the caller creates it, on the
// site's discovery, and closes it after the bridge) with cfg, connected or
// connecting to NATS: an unreachable server is not an error, the bridge
// retries for ever (Stats tells the link state). Nothing crosses before
// Run. Errors: an invalid cfg (ErrConfig), unreadable credential files.
func New(node *colugo.Node, cfg Config) (*Bridge, error) {
	if node == nil {
		return nil, fmt.Errorf("%w: nil node", ErrConfig)
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	b := &Bridge{
		node: node, cfg: cfg, id: node.ID(),
		inflightExp: make(chan struct{}, cfg.MaxInflight),
		inflightImp: make(chan struct{}, cfg.MaxInflight),
		exported:    map[string]bool{},
		expSvc:      map[string][]*nats.Subscription{},
		pubs:        map[pubKey]*colugo.Publisher[[]byte]{},
	}
	opts := []nats.Option{
		nats.Name("colugo-bridge " + cfg.Site + " " + b.id),
		nats.IgnoreDiscoveredServers(), // only the configured servers, never a gossiped address
		nats.NoEcho(),                  // its own publishes never come back to it
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.NATS.ReconnectWait),
		nats.ReconnectBufSize(cfg.NATS.ReconnectBuffer),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { b.st.disconnects.Add(1) }),
		nats.ReconnectHandler(func(*nats.Conn) { b.st.reconnects.Add(1) }),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}), // slow consumers: counted per subscription (Dropped)
	}
	n := cfg.NATS
	switch {
	case n.User != "" || n.Password != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: nkey file: %w", err)
		}
		opts = append(opts, o)
	}
	if n.TLS.CA != "" {
		opts = append(opts, nats.RootCAs(n.TLS.CA))
	}
	if n.TLS.Cert != "" {
		opts = append(opts, nats.ClientCert(n.TLS.Cert, n.TLS.Key))
	}
	url := n.URLs[0]
	for _, u := range n.URLs[1:] {
		url += "," + u
	}
	if b.nc, err = nats.Connect(url, opts...); err != nil {
		return nil, fmt.Errorf("bridge: connecting to NATS: %w", err)
	}
	for _, l := range []Lists{cfg.Export, cfg.Import} {
		for _, t := range l.Topics {
			if t.JetStream != nil && b.js == nil {
				if b.js, err = jetstream.New(b.nc); err != nil {
					b.nc.Close()
					return nil, fmt.Errorf("bridge: JetStream: %w", err)
				}
			}
		}
	}
	return b, nil
}

// ID returns the bridge's id, which its messages carry on NATS: its node's.
func (b *Bridge) ID() string { return b.id }

// Run makes the bridge forward what its Config lists, both ways, until ctx
// ends (it then returns ctx's error) or Close is called (nil). It blocks
// all along; the local network never waits for NATS, whose link may come
// and go meanwhile. A Bridge runs once: a second Run, or one after Close,
// returns ErrClosed. Setup errors (a local subscription or a NATS
// subscription the library refuses) stop it and are returned.
func (b *Bridge) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.running || b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.running = true
	b.ctx, b.cancel = context.WithCancel(ctx)
	b.runDone = make(chan struct{})
	rctx := b.ctx
	b.mu.Unlock()
	defer close(b.runDone)

	err := b.start(rctx)
	if err == nil {
		<-rctx.Done()
	}
	b.cancel()
	b.stop()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// start sets up the imports and exports.
func (b *Bridge) start(ctx context.Context) error {
	for _, r := range b.cfg.Import.Topics {
		if err := b.importTopics(ctx, r); err != nil {
			return err
		}
	}
	for _, r := range b.cfg.Export.Topics {
		if r.JetStream != nil {
			b.goRun(func() { b.ensureStream(ctx, b.js, r) })
		}
	}
	for _, r := range b.cfg.Import.Services {
		b.goRun(func() { b.importService(ctx, r) })
	}
	for _, r := range b.cfg.Export.Topics {
		if !isPattern(r.Name) {
			if err := b.exportTopic(ctx, r.Name, r); err != nil {
				return err
			}
		}
	}
	// Patterns and services follow the catalog: a topic pattern is
	// subscribed once a peer publishes a matching topic, a service exported
	// while a peer serves it (so that NATS tells "no responders" right).
	events := b.node.Events(ctx)
	b.goRun(func() {
		for range events {
			b.sync(ctx)
		}
	})
	return nil
}

// stop undoes start, once Run's ctx has ended.
func (b *Bridge) stop() {
	b.mu.Lock()
	subs := b.subs
	b.subs = nil
	for _, s := range b.expSvc {
		subs = append(subs, s...)
	}
	b.expSvc = map[string][]*nats.Subscription{}
	servers := b.servers
	b.servers = nil
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	for _, s := range servers {
		_ = s.Close()
	}
	b.wg.Wait()
	b.mu.Lock()
	stops := b.stops
	b.stops = nil
	pubs := b.pubs
	b.pubs = map[pubKey]*colugo.Publisher[[]byte]{}
	b.mu.Unlock()
	for _, f := range stops {
		f()
	}
	for _, p := range pubs {
		_ = p.Close()
	}
}

// goRun runs f in a goroutine that Run waits for, unless Run is ending.
func (b *Bridge) goRun(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil || b.ctx.Err() != nil {
		return false
	}
	b.wg.Go(f)
	return true
}

// Close stops Run (waiting until it has undone everything) and closes the
// NATS connection. The node is the caller's to close, after. Close is
// idempotent and safe to call concurrently.
func (b *Bridge) Close() error {
	b.mu.Lock()
	b.closed = true
	cancel, done := b.cancel, b.runDone
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	b.nc.Close()
	return nil
}

// sync exports what the catalog shows that the Config lists: topic
// patterns' new matches, and the services some peer serves now (and stops
// exporting those that none serves any more).
func (b *Bridge) sync(ctx context.Context) {
	served := map[string]Service{}
	for _, p := range b.node.Peers() {
		for _, t := range p.Topics {
			for _, r := range b.cfg.Export.Topics {
				if isPattern(r.Name) && match(r.Name, t.Name) {
					b.mu.Lock()
					done := b.exported[t.Name]
					b.mu.Unlock()
					if !done {
						_ = b.exportTopic(ctx, t.Name, r) // refused names are the library's; nothing to undo
					}
					break
				}
			}
		}
		for _, s := range p.Services {
			for _, r := range b.cfg.Export.Services {
				if match(r.Name, s.Name) {
					served[s.Name] = r
					break
				}
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for name, subs := range b.expSvc {
		if _, ok := served[name]; !ok {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			delete(b.expSvc, name)
		}
	}
	for name, r := range served {
		if _, ok := b.expSvc[name]; !ok {
			if subs, err := b.exportService(name, r); err == nil {
				b.expSvc[name] = subs
			}
		}
	}
}

// LinkState is the state of a bridge's NATS connection.
type LinkState string

// Link states.
const (
	LinkUp     LinkState = "up"     // connected
	LinkDown   LinkState = "down"   // connecting or reconnecting: messages to NATS are held (ReconnectBuffer) or dropped
	LinkClosed LinkState = "closed" // the bridge is closed
)

// Stats is a snapshot of a bridge's counters.
type Stats struct {
	Link        LinkState
	Reconnects  uint64 // times the link came back after a loss
	Disconnects uint64 // times it was lost
	// JetStreamErrors counts the failed attempts at making the streams of
	// exported JetStream entries and the consumers of imported ones (each
	// retried until it succeeds: the link may be down, or the exporter not
	// there yet).
	JetStreamErrors uint64
	Export          Direction // from the local network to NATS
	Import          Direction // from NATS to the local network
}

// Direction counts one direction's traffic.
type Direction struct {
	Messages      uint64 // topic messages forwarded
	Bytes         uint64 // their payload bytes
	Requests      uint64 // requests forwarded
	RequestErrors uint64 // of those, the ones that failed (answered with an error)
	Drops         Drops
}

// Drops counts the messages (and requests) not forwarded, by reason.
type Drops struct {
	Rate       uint64 // downsampled away (max_rate)
	Payload    uint64 // above max_payload
	Link       uint64 // NATS unreachable and the reconnect buffer full, or the publish failed
	Loop       uint64 // not from this site (export), or from this site or bridge (import)
	BadSubject uint64 // a subject that is no escaped colugo name (import)
	BadHeader  uint64 // missing or malformed headers (import; requests from NATS)
	Limit      uint64 // past MaxImportTopics or MaxInflight, or a NATS slow-consumer drop
	Queue      uint64 // an exported topic's local queue was full (QueueBytes): the oldest went
	Failed     uint64 // the local publish failed
	Duplicate  uint64 // a JetStream redelivery of a message the site had (import)
}

type dirCounters struct {
	messages, bytes, requests, requestErrors                        atomic.Uint64
	rate, payload, link, loop, badSubject, badHeader, limit, failed atomic.Uint64
	duplicate                                                       atomic.Uint64
}

type counters struct {
	reconnects, disconnects, streamErrors atomic.Uint64
	exp, imp                              dirCounters
}

func (d *dirCounters) snapshot() Direction {
	return Direction{
		Messages: d.messages.Load(), Bytes: d.bytes.Load(), Requests: d.requests.Load(), RequestErrors: d.requestErrors.Load(),
		Drops: Drops{Rate: d.rate.Load(), Payload: d.payload.Load(), Link: d.link.Load(), Loop: d.loop.Load(),
			BadSubject: d.badSubject.Load(), BadHeader: d.badHeader.Load(), Limit: d.limit.Load(), Failed: d.failed.Load(),
			Duplicate: d.duplicate.Load()},
	}
}

// Stats returns the bridge's counters and link state. Safe at any time,
// also after Close.
func (b *Bridge) Stats() Stats {
	s := Stats{Reconnects: b.st.reconnects.Load(), Disconnects: b.st.disconnects.Load(), JetStreamErrors: b.st.streamErrors.Load(),
		Export: b.st.exp.snapshot(), Import: b.st.imp.snapshot()}
	switch b.nc.Status() {
	case nats.CONNECTED:
		s.Link = LinkUp
	case nats.CLOSED:
		s.Link = LinkClosed
	default:
		s.Link = LinkDown
	}
	for _, ss := range b.node.Stats().Subscriptions {
		if b.isExported(ss.Topic) {
			s.Export.Drops.Queue += ss.Dropped
		}
	}
	b.mu.Lock()
	for _, sub := range b.subs {
		if n, err := sub.Dropped(); err == nil && n > 0 {
			s.Import.Drops.Limit += uint64(n)
		}
	}
	b.mu.Unlock()
	return s
}

func (b *Bridge) isExported(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.exported[topic]
}

// limiter downsamples to one value per interval, keeping the newest: the
// first value after a quiet interval goes at once, later ones wait for the
// interval's end, each replacing the one waiting (a drop).
type limiter[T any] struct {
	interval time.Duration
	send     func(T)
	drop     func()

	mu      sync.Mutex
	last    time.Time
	pending *T
	timer   *time.Timer
	stopped bool
}

func newLimiter[T any](rate float64, send func(T), drop func()) *limiter[T] {
	return &limiter[T]{interval: time.Duration(float64(time.Second) / rate), send: send, drop: drop}
}

func (l *limiter[T]) offer(v T) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	now := time.Now()
	if l.pending == nil && now.Sub(l.last) >= l.interval {
		l.last = now
		l.mu.Unlock()
		l.send(v)
		return
	}
	if l.pending != nil {
		l.drop()
	}
	l.pending = &v
	if l.timer == nil {
		l.timer = time.AfterFunc(l.last.Add(l.interval).Sub(now), l.flush)
	}
	l.mu.Unlock()
}

func (l *limiter[T]) flush() {
	l.mu.Lock()
	p := l.pending
	l.pending, l.timer = nil, nil
	if l.stopped || p == nil {
		l.mu.Unlock()
		return
	}
	l.last = time.Now()
	l.mu.Unlock()
	l.send(*p)
}

// stop drops what waits and sends nothing more.
func (l *limiter[T]) stop() {
	l.mu.Lock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
	}
	l.pending = nil
	l.mu.Unlock()
}
