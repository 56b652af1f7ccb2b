package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

	st     counters
	queued *colugo.QueueBudget      // the exported topics' queues', together
	dialer *abortDialer             // of nc and jsnc
	link   atomic.Pointer[linkInfo] // nil until New has read it once
	// The JetStream exports' own connection and its publisher (see
	// jsexport.go); nil without JetStream exports.
	jsnc  *nats.Conn
	jsPub jetstream.JetStream

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
	matched  int                             // of those, pattern entries' (MaxExportTopics)
	refused  map[string]bool                 // pattern matches past MaxExportTopics, maxRefused at most
	expSvc   map[string][]*nats.Subscription // exported services' queue subscriptions
	pubs     map[pubKey]*colugo.Publisher[[]byte]
	// flushPub is a publisher of a JetStream import, whose Flush tells
	// when the node has written what was published (the node's connections
	// are all its publishers'): acks wait for it.
	flushPub atomic.Pointer[colugo.Publisher[[]byte]]
	servers  []*colugo.Server
	imported []string             // names of the imported services served (servers')
	subs     []*nats.Subscription // topic import subscriptions
	stops    []func()             // limiters' stops
}

type pubKey struct{ topic, codec, typ string }

// linkInfo is the NATS link's state and, when up, its server's URL
// (credentials redacted).
type linkInfo struct {
	state  LinkState
	server string
}

// setLink records the link's state; closed is final.
func (b *Bridge) setLink(state LinkState, server string) {
	next := &linkInfo{state, server}
	for {
		cur := b.link.Load()
		if cur != nil && cur.state == LinkClosed {
			return
		}
		if b.link.CompareAndSwap(cur, next) {
			return
		}
	}
}

// linkUp records that nc has (re)connected.
func (b *Bridge) linkUp(nc *nats.Conn) { b.setLink(LinkUp, nc.ConnectedUrlRedacted()) }

// New returns a bridge for node (the bridge's node: it publishes imported
// topics and serves imported services; the caller creates it, on the
// site's discovery, and closes it after the bridge) with cfg, connected or
// connecting to NATS: an unreachable server is not an error, the bridge
// retries for ever (Stats tells the link state). Nothing crosses before
// Run. Errors: an invalid cfg, or a credential, key or certificate file it
// names that is missing or not a regular file of at most 1 MiB
// (ErrConfig); an nkey file nats.go cannot read.
func New(node *colugo.Node, cfg Config) (*Bridge, error) {
	if node == nil {
		return nil, fmt.Errorf("%w: nil node", ErrConfig)
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	b := &Bridge{
		node: node, cfg: cfg, id: node.ID(), queued: colugo.NewQueueBudget(cfg.QueueBudget), dialer: newAbortDialer(),
		inflightExp: make(chan struct{}, cfg.MaxInflight),
		inflightImp: make(chan struct{}, cfg.MaxInflight),
		exported:    map[string]bool{},
		refused:     map[string]bool{},
		expSvc:      map[string][]*nats.Subscription{},
		pubs:        map[pubKey]*colugo.Publisher[[]byte]{},
	}
	opts := []nats.Option{
		nats.Name("colugo-bridge " + cfg.Site + " " + b.id),
		nats.IgnoreDiscoveredServers(), // only the configured servers, never a gossiped address
		nats.SetCustomDialer(b.dialer), // so that a stopping bridge need not wait out a silent link
		nats.NoEcho(),                  // its own publishes never come back to it
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.NATS.ReconnectWait),
		nats.PingInterval(cfg.NATS.PingInterval),
		nats.MaxPingsOutstanding(2),
		nats.FlusherTimeout(cfg.NATS.WriteTimeout),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}), // slow consumers: counted per subscription (Dropped)
	}
	n := cfg.NATS
	for _, f := range []struct{ what, path string }{{"creds_file", n.CredsFile}, {"nkey_file", n.NKeyFile},
		{"tls ca", n.TLS.CA}, {"tls cert", n.TLS.Cert}, {"tls key", n.TLS.Key}} {
		what, path := f.what, f.path
		if path == "" {
			continue
		}
		if err := checkFile("nats "+what, path); err != nil {
			if !errors.Is(err, ErrConfig) {
				err = fmt.Errorf("%w: nats %s: %w", ErrConfig, what, err)
			}
			return nil, err
		}
	}
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
	if cfg.exportsJetStream() {
		b.jsnc, b.jsPub, err = newJSPublisher(url, append(opts[:len(opts):len(opts)],
			nats.Name("colugo-bridge "+cfg.Site+" "+b.id+" jetstream")))
		if err != nil {
			return nil, fmt.Errorf("bridge: connecting to NATS: %w", err)
		}
	}
	opts = append(opts,
		nats.ReconnectBufSize(cfg.NATS.ReconnectBuffer),
		// The link state as the handlers tell it, not nc.Status(): that
		// waits for nc's lock, which a write blocked on a silent link holds
		// (for up to WriteTimeout), and Stats feeds the node's $describe.
		nats.ConnectHandler(func(nc *nats.Conn) { b.linkUp(nc) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.st.disconnects.Add(1)
			b.setLink(LinkDown, "")
			b.cfg.Logger.Warn("bridge: NATS link lost; reconnecting", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.st.reconnects.Add(1)
			b.linkUp(nc)
			b.cfg.Logger.Info("bridge: NATS link back", slog.String("server", nc.ConnectedUrlRedacted()))
		}),
		nats.ClosedHandler(func(*nats.Conn) { b.setLink(LinkClosed, "") }),
	)
	if b.nc, err = nats.Connect(url, opts...); err != nil {
		b.closeJS()
		return nil, fmt.Errorf("bridge: connecting to NATS: %w", err)
	}
	// The state Connect left, unless a handler has told a newer one.
	first := &linkInfo{state: LinkDown}
	if b.nc.Status() == nats.CONNECTED {
		first = &linkInfo{LinkUp, b.nc.ConnectedUrlRedacted()}
	}
	b.link.CompareAndSwap(nil, first)
	for _, l := range []Lists{cfg.Export, cfg.Import} {
		for _, t := range l.Topics {
			if t.JetStream != nil && b.js == nil {
				if b.js, err = jetstream.New(b.nc); err != nil {
					b.nc.Close()
					b.closeJS()
					return nil, fmt.Errorf("bridge: JetStream: %w", err)
				}
			}
		}
	}
	if err := node.SetStatus(StatusName, func() any { return b.statusJSON() }); err != nil {
		b.nc.Close()
		b.closeJS()
		return nil, fmt.Errorf("bridge: status: %w", err)
	}
	return b, nil
}

// closeJS closes the JetStream exports' publish connection, if any.
func (b *Bridge) closeJS() {
	if b.jsnc != nil {
		b.jsnc.Close()
	}
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
	if err != nil && rctx.Err() != nil {
		err = nil // ended during setup (Close, or ctx): as if after
	}
	if err == nil {
		<-rctx.Done()
	}
	b.cancel()
	abort := time.AfterFunc(b.stopWait(), b.dialer.abort)
	b.stop()
	abort.Stop()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// start sets up the imports and exports.
func (b *Bridge) start(ctx context.Context) error {
	for i := range b.cfg.Import.Topics {
		if err := b.importTopics(ctx, i); err != nil {
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
	b.servers, b.imported = nil, nil
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
// NATS connection. On a link gone silent, where every write blocks, it
// gives up on the writes after 1 s, 3 s with JetStream exports (what was
// not written is lost, as on a cut), rather than wait NATS.WriteTimeout
// for each. The node is the caller's to close, after. Close is idempotent
// and safe to call concurrently.
func (b *Bridge) Close() error {
	b.mu.Lock()
	b.closed = true
	cancel, done := b.cancel, b.runDone
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	_ = b.node.SetStatus(StatusName, nil)                 // no longer a bridge
	abort := time.AfterFunc(b.stopWait(), b.dialer.abort) // the last flushes, on a silent link
	b.nc.Close()
	b.closeJS()
	abort.Stop()
	b.setLink(LinkClosed, "")
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

// jsFailed counts a JetStream failure of what (an entry and a step) and
// keeps it as the last; it logs it unless it is the last one again (a
// retry loop would log every round).
func (b *Bridge) jsFailed(what string, err error) {
	b.st.streamErrors.Add(1)
	msg := clip(what+": "+err.Error(), maxErrorText)
	if prev := b.st.lastStreamError.Swap(&msg); prev == nil || *prev != msg {
		b.cfg.Logger.Warn("bridge: JetStream: "+what+" failed; retrying", slog.Any("error", err))
	}
}

// maxErrorText bounds the error Stats keeps: its text may come from the
// NATS server, and it goes into the node's $describe.
const maxErrorText = 512

// clip returns s cut to at most n bytes, on a rune boundary, marked "…"
// when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// LinkState is the state of a bridge's NATS connection.
type LinkState string

// Link states.
const (
	LinkUp     LinkState = "up"     // connected
	LinkDown   LinkState = "down"   // connecting or reconnecting: messages to NATS are held (ReconnectBuffer, JetStream.Spool) or dropped
	LinkClosed LinkState = "closed" // the bridge is closed
)

// Stats is a snapshot of a bridge's counters.
// The JSON names are those of the bridge's status document (Status).
type Stats struct {
	Link        LinkState `json:"link"`
	Reconnects  uint64    `json:"reconnects"`  // times the link came back after a loss
	Disconnects uint64    `json:"disconnects"` // times it was lost
	// JetStreamErrors counts the failed attempts at making the streams of
	// exported JetStream entries and the consumers of imported ones, and
	// the failed rounds of publishing to those streams (each retried until
	// it succeeds: the link may be down, or the exporter not there yet).
	// JetStreamError is the last of them: the entry, the step and the
	// error, e.g. "import robot/**: stream: no stream holds its subjects
	// yet (...)".
	JetStreamErrors uint64 `json:"jetstream_errors"`
	JetStreamError  string `json:"jetstream_error,omitempty"`
	// Spooled is the number of exported JetStream messages held until
	// their stream acks them (sent, or waiting to be: JetStream.Spool).
	Spooled uint64 `json:"spooled"`
	// Queued is the bytes the exported topics' local queues hold now,
	// waiting for NATS publishing (QueueBudget: at most that, plus two
	// messages per topic: one queued, one being handed on).
	Queued uint64 `json:"queued"`
	// ExportRefused is how many topics matching an export pattern were
	// not exported, MaxExportTopics being reached (distinct names, counted
	// up to 4096).
	ExportRefused uint64    `json:"export_refused"`
	Export        Direction `json:"export"` // from the local network to NATS
	Import        Direction `json:"import"` // from NATS to the local network
}

// Direction counts one direction's traffic.
type Direction struct {
	Messages      uint64 `json:"messages"`       // topic messages forwarded
	Bytes         uint64 `json:"bytes"`          // their payload bytes
	Requests      uint64 `json:"requests"`       // requests forwarded
	RequestErrors uint64 `json:"request_errors"` // of those, the ones that failed (answered with an error)
	Drops         Drops  `json:"drops"`
}

// Drops counts the messages (and requests) not forwarded, by reason.
type Drops struct {
	Rate       uint64 `json:"rate"`        // downsampled away (max_rate)
	Payload    uint64 `json:"payload"`     // above max_payload
	Link       uint64 `json:"link"`        // NATS unreachable and the reconnect buffer (JetStream: the spool) full, or the publish failed
	Loop       uint64 `json:"loop"`        // not from this site (export), or from this site or bridge (import)
	BadSubject uint64 `json:"bad_subject"` // a subject that is no escaped colugo name (import)
	BadHeader  uint64 `json:"bad_header"`  // missing or malformed headers (import; requests from NATS)
	Limit      uint64 `json:"limit"`       // past MaxImportTopics or MaxInflight, or a NATS slow-consumer drop
	Queue      uint64 `json:"queue"`       // an exported topic's local queue was full (QueueBytes): the oldest went
	Failed     uint64 `json:"failed"`      // the local publish failed
	Duplicate  uint64 `json:"duplicate"`   // a JetStream redelivery of a message the site had (import)
}

type dirCounters struct {
	messages, bytes, requests, requestErrors                        atomic.Uint64
	rate, payload, link, loop, badSubject, badHeader, limit, failed atomic.Uint64
	duplicate                                                       atomic.Uint64
}

type counters struct {
	reconnects, disconnects, streamErrors atomic.Uint64
	lastStreamError                       atomic.Pointer[string]
	spooled                               atomic.Int64
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
		Spooled: uint64(max(b.st.spooled.Load(), 0)), Queued: uint64(b.queued.Used()), Export: b.st.exp.snapshot(), Import: b.st.imp.snapshot()}
	if e := b.st.lastStreamError.Load(); e != nil {
		s.JetStreamError = *e
	}
	s.Link = LinkDown
	if l := b.link.Load(); l != nil {
		s.Link = l.state
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
	s.ExportRefused = uint64(len(b.refused))
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

// StatusName is the name of the status document a bridge's node carries
// in its $describe (colugo.PeerInfo.Status[StatusName]): a Status in
// JSON, for tools (colugo nodes, colugo doctor), which read it without
// this package. It is set by New and removed by Close.
const StatusName = "bridge"

// Status is what a bridge tells of itself in its node's $describe: its
// site and id, its Config's entries, what it exports and imports at the
// time, and its Stats. The lists are cut (Truncated) so that the document
// stays within colugo.MaxStatusBytes.
type Status struct {
	Site string `json:"site"`
	ID   string `json:"id"` // the bridge id (its node's), which its messages carry on NATS
	// Server is the NATS server the link is up to, credentials redacted;
	// "" while it is down.
	Server string `json:"server,omitempty"`
	// Export and Import are the Config's entries.
	Export Rules `json:"export"`
	Import Rules `json:"import"`
	// Exporting lists the local topics the bridge forwards to NATS (a
	// pattern's, once some node publishes a match) and the services it
	// serves on NATS (while some node serves them); Importing, the
	// imported services it serves on the site (once an exporter described
	// them). Imported topics are the topics its node publishes: each
	// carries a colugo.Relay (Via "nats", Remote the site of its first
	// message, Name its subject) in the node's $describe.
	Exporting Names `json:"exporting"`
	Importing Names `json:"importing"`
	Stats     Stats `json:"stats"`
	Truncated bool  `json:"truncated,omitempty"` // lists were cut to fit
}

// Rules are a direction's Config entries, as Status shows them.
type Rules struct {
	Topics   []Rule `json:"topics,omitempty"`
	Services []Rule `json:"services,omitempty"`
}

// Rule is one Config entry (Topic or Service), as Status shows it.
type Rule struct {
	Name       string  `json:"name"`
	Prefix     string  `json:"prefix,omitempty"`
	MaxRate    float64 `json:"max_rate,omitempty"`
	MaxPayload int     `json:"max_payload,omitempty"`
	JetStream  bool    `json:"jetstream,omitempty"`
}

// Names are topic and service names, sorted.
type Names struct {
	Topics   []string `json:"topics,omitempty"`
	Services []string `json:"services,omitempty"`
}

// maxStatusNames bounds each list of a Status.
const maxStatusNames = 64

// Status returns the bridge's status, as its node's $describe tells it
// (the lists bounded). Safe at any time, also after Close.
func (b *Bridge) Status() Status {
	rules := func(l Lists) Rules {
		var r Rules
		for _, t := range l.Topics {
			r.Topics = append(r.Topics, Rule{Name: t.Name, Prefix: t.Prefix, MaxRate: t.MaxRate, MaxPayload: t.MaxPayload, JetStream: t.JetStream != nil})
		}
		for _, s := range l.Services {
			r.Services = append(r.Services, Rule{Name: s.Name, Prefix: s.Prefix, MaxPayload: s.MaxPayload})
		}
		return r
	}
	s := Status{Site: b.cfg.Site, ID: b.id, Export: rules(b.cfg.Export), Import: rules(b.cfg.Import), Stats: b.Stats()}
	// Link and server from one reading, so that they agree.
	if l := b.link.Load(); l != nil {
		s.Stats.Link = l.state
		if l.state == LinkUp {
			s.Server = l.server
		}
	}
	b.mu.Lock()
	s.Exporting.Topics = slices.Sorted(maps.Keys(b.exported))
	s.Exporting.Services = slices.Sorted(maps.Keys(b.expSvc))
	s.Importing.Services = slices.Sorted(slices.Values(b.imported))
	b.mu.Unlock()
	for _, l := range []*[]Rule{&s.Export.Topics, &s.Export.Services, &s.Import.Topics, &s.Import.Services} {
		if len(*l) > maxStatusNames {
			*l, s.Truncated = (*l)[:maxStatusNames], true
		}
	}
	for _, l := range []*[]string{&s.Exporting.Topics, &s.Exporting.Services, &s.Importing.Services} {
		if len(*l) > maxStatusNames {
			*l, s.Truncated = (*l)[:maxStatusNames], true
		}
	}
	return s
}

// statusJSON is the node's status document: Status, its lists halved
// until it fits colugo.MaxStatusBytes (names are up to 255 bytes each).
func (b *Bridge) statusJSON() json.RawMessage {
	s := b.Status()
	for {
		out, err := json.Marshal(s)
		if err != nil {
			return nil
		}
		if len(out) <= colugo.MaxStatusBytes {
			return out
		}
		cut := false
		for _, l := range []*[]Rule{&s.Export.Topics, &s.Export.Services, &s.Import.Topics, &s.Import.Services} {
			if len(*l) > 0 {
				*l, cut = (*l)[:len(*l)/2], true
			}
		}
		for _, l := range []*[]string{&s.Exporting.Topics, &s.Exporting.Services, &s.Importing.Services} {
			if len(*l) > 0 {
				*l, cut = (*l)[:len(*l)/2], true
			}
		}
		if !cut {
			return nil
		}
		s.Truncated = true
	}
}

// importRelay is what the bridge's publisher of an imported topic says in
// $describe: the remote site of its first message (origin is "site
// bridge-id") and the topic's subject, by the first import entry that
// matches it.
func (b *Bridge) importRelay(topic, origin string) colugo.Relay {
	site, _, _ := strings.Cut(origin, " ")
	r := colugo.Relay{Via: "nats", Remote: site}
	for _, t := range b.cfg.Import.Topics {
		if match(t.Name, topic) {
			r.Name = subject(b.cfg.Root, kindTopic, joinPrefix(t.Prefix, topic))
			break
		}
	}
	return r
}
