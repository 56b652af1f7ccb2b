package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/zeroconf/v2"
	"github.com/miekg/dns"

	"github.com/colugo-go/colugo/discovery"
)

// maxSeedSockets bounds the seed sockets a SeedDirectory tracks: records
// come from the network, and any host can announce any number.
const maxSeedSockets = 1024

// SeedDirectory is a [discovery.SeedDirectory] on mDNS: it finds the
// sockets that nodes of the Python colugo (the seed) announce on their
// service type, _colugo._tcp, and announces seed-style records for this
// node's seed-visible sockets.
//
// Finding: a passive socket reads every mDNS response on the chosen
// interfaces (leniently: python-zeroconf 0.47 adds an NSEC record that
// miekg/dns rejects), and a browse round every refresh interval
// ([WithRefreshInterval], 10 s) asks for every seed socket, so that live
// ones are seen again. A seed record is an instance _<topic>._<uuid> (a
// dot in the topic is a label boundary) whose TXT holds topic= and
// node_uuid= equal to those and socket_type= 1 (PUB) or 4 (REP), with an
// SRV port and an A record; anything else of that type is refused and
// counted (Refused in [SeedStats]). A socket is reported Joined when first
// seen, and Left on its goodbye or when its records expire: the SRV and A
// records' TTL (120 s from the seed) after it was last seen, or
// [WithExpiry] when given. A socket seen again with another address is
// reported Left, then Joined. At most 1024 sockets are tracked; more are
// counted (Overflow in [SeedStats]) and not reported. This directory's own
// records are never reported.
//
// Announcing: see [SeedDirectory.Announce].
//
// The same options as [New] apply: [WithInterfaces], [WithLogger],
// [WithRefreshInterval], [WithExpiry]. Its methods are safe for concurrent
// use. The zero value is not usable; call [NewSeedDirectory].
type SeedDirectory struct {
	cfg    config
	cfgErr error
	stats  seedCounters

	mu      sync.Mutex // guards everything below and serializes the methods
	state   int
	ifaces  []net.Interface
	addrs   []string // per interface: the IPv4 address its records carry
	lis     *listener
	events  chan discovery.SeedEvent
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	records map[*seedRecord]struct{}

	ownMu sync.Mutex
	own   map[string]bool // lowercased instances this directory announced
}

// seedRecord is one announced socket: a registration per interface.
type seedRecord struct {
	instance string
	servers  []*zeroconf.Server
}

type seedCounters struct {
	refused, overflow, badPackets, skippedRecords, rounds atomic.Uint64
}

// SeedStats counts what a [SeedDirectory] refused or did since
// [NewSeedDirectory].
type SeedStats struct {
	// Refused counts records of the seed's type that are not seed
	// records: an instance not shaped _<topic>._<uuid>, a topic the seed
	// cannot carry, TXT without topic, socket_type (1 or 4) or node_uuid,
	// or not matching the instance, a bad port, no IPv4 address.
	Refused uint64
	// Overflow counts seed sockets not tracked because 1024 already were.
	Overflow uint64
	// BadPackets counts mDNS packets (of any service) that did not parse.
	BadPackets uint64
	// SkippedRecords counts records left out of packets read without them
	// (python-zeroconf 0.47's NSEC).
	SkippedRecords uint64
	// Rounds counts browse rounds started.
	Rounds uint64
}

// NewSeedDirectory returns a SeedDirectory configured by opts (the
// options of [New]). It does no I/O: [SeedDirectory.Start] chooses the
// interfaces and reports invalid options.
func NewSeedDirectory(opts ...Option) *SeedDirectory {
	cfg := config{refresh: defaultRefresh}
	for _, o := range opts {
		o.apply(&cfg)
	}
	d := &SeedDirectory{cfg: cfg, records: map[*seedRecord]struct{}{}, own: map[string]bool{}}
	if cfg.logger == nil {
		d.cfg.logger = slog.New(slog.DiscardHandler)
	}
	d.cfgErr = checkTimes(cfg.refresh, cfg.expiry) // no expiry: the records' TTL
	return d
}

// Stats returns the counters. It is safe to call at any time.
func (d *SeedDirectory) Stats() SeedStats {
	return SeedStats{
		Refused:        d.stats.refused.Load(),
		Overflow:       d.stats.overflow.Load(),
		BadPackets:     d.stats.badPackets.Load(),
		SkippedRecords: d.stats.skippedRecords.Load(),
		Rounds:         d.stats.rounds.Load(),
	}
}

// Start chooses the interfaces, opens the passive socket and starts
// browsing, then returns (it blocks only for that setup). Seed sockets
// already on the network are reported within milliseconds of the first
// round, which starts at once.
//
// Events arrive on the returned channel (see [SeedDirectory] for when);
// events of one instance arrive in order. A consumer that stops reading
// pauses event processing (no event is dropped) until it reads again or
// Close is called. The directory closes the channel when Close returns,
// and at no other time.
//
// Start returns [discovery.ErrStarted] or [discovery.ErrClosed] when
// called twice or after Close, an error for invalid options,
// [ErrNoInterface] (wrapped) when no interface fits, and socket errors.
// After a failed Start nothing is left open and Start may be called again.
func (d *SeedDirectory) Start() (<-chan discovery.SeedEvent, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.state {
	case stateStarted:
		return nil, discovery.ErrStarted
	case stateClosed:
		return nil, discovery.ErrClosed
	}
	if d.cfgErr != nil {
		return nil, d.cfgErr
	}
	ifaces, _, nets, err := chooseInterfaces(d.cfg.ifaces)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(ifaces))
	for i := range ifaces {
		addrs[i] = firstIPv4(&ifaces[i])
	}
	log := d.cfg.logger
	lis, err := listen(ifaces, log, func() { d.stats.badPackets.Add(1) })
	if err != nil {
		return nil, err
	}
	lis.skipped = func(n int) { d.stats.skippedRecords.Add(uint64(n)) }
	lis.decode = seedObservations
	d.state, d.ifaces, d.addrs, d.lis = stateStarted, ifaces, addrs, lis
	d.events = make(chan discovery.SeedEvent, eventBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel

	obs := make(chan observation, 32)
	b := &browser{
		service: seedServiceType, ifaces: ifaces, refresh: d.cfg.refresh,
		wg: &d.wg, log: log, rounds: &d.stats.rounds,
	}
	c := &seedCore{
		log: log, out: d.events, stats: &d.stats, local: nets, expiry: d.cfg.expiry,
		isOwn: d.isOwn, socks: map[string]*seedState{},
	}
	log.InfoContext(ctx, "mdns seed directory started", slog.Any("addrs", addrs))
	d.wg.Go(func() { lis.run(ctx, obs) })
	d.wg.Go(func() { b.run(ctx) })
	d.wg.Go(func() { c.run(ctx, obs) })
	return d.events, nil
}

// firstIPv4 returns the first IPv4 address of ifc ("" if none).
func firstIPv4(ifc *net.Interface) string {
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4().String()
		}
	}
	return ""
}

func (d *SeedDirectory) isOwn(inst string) bool {
	d.ownMu.Lock()
	defer d.ownMu.Unlock()
	return d.own[inst]
}

// Announce registers the seed record of one socket of this node: instance
// _<name>._<uuid>._colugo._tcp.local. with a fresh random uuid (version 4
// text, so a new instance after any change or restart, which seed clients
// connect to: they ignore updates), TXT exactly topic=<name>,
// socket_type=<kind>, node_uuid=<uuid> in that order, then colugo-go=1
// (which the seed ignores, and which other colugo-go nodes' directories
// report as SeedSocket.Colugo), an SRV with port on
// a host name of its own, and one A record (the seed reads only the first
// address): on each chosen interface, that interface's first IPv4
// address. The socket must listen on port on those addresses.
//
// withdraw sends the goodbyes; it is idempotent and returns nil. Close
// withdraws every record still announced. Announce blocks for the
// registration (milliseconds). It returns an error when name fails
// [CheckSeedName], kind is neither [discovery.SeedPub] nor
// [discovery.SeedRep], or port is out of range, before Start, after Close
// ([discovery.ErrClosed]), and the registration's error.
func (d *SeedDirectory) Announce(name string, kind discovery.SeedKind, port int) (withdraw func() error, err error) {
	if err := CheckSeedName(name); err != nil {
		return nil, err
	}
	if kind != discovery.SeedPub && kind != discovery.SeedRep {
		return nil, fmt.Errorf("%s seed kind %v: want pub or rep", errPrefix, kind)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("%s seed port %d out of range", errPrefix, port)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.state {
	case stateNew:
		return nil, errNotStarted
	case stateClosed:
		return nil, discovery.ErrClosed
	}
	uuid := newSeedUUID()
	rec := &seedRecord{instance: "_" + name + "._" + uuid}
	host := "colugo-seed-" + strings.ReplaceAll(uuid, "-", "")
	txt := []string{"topic=" + name, "socket_type=" + strconv.Itoa(int(kind)), "node_uuid=" + uuid, colugoTXT}
	d.ownMu.Lock()
	d.own[strings.ToLower(rec.instance)] = true // before the first packet of it can arrive
	d.ownMu.Unlock()
	for i := range d.ifaces {
		if d.addrs[i] == "" {
			continue
		}
		s, err := zeroconf.RegisterProxy(rec.instance, seedServiceType, domain, port, host, []string{d.addrs[i]}, txt, d.ifaces[i:i+1])
		if err != nil {
			for _, s := range rec.servers {
				s.Shutdown()
			}
			return nil, fmt.Errorf("%s register seed record %q on %s: %w", errPrefix, rec.instance, d.ifaces[i].Name, err)
		}
		rec.servers = append(rec.servers, s)
	}
	d.records[rec] = struct{}{}
	d.cfg.logger.Info("mdns: seed record announced", slog.String(logKeyInstance, rec.instance), slog.Int("port", port))
	var once sync.Once
	return func() error {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.withdrawLocked(rec)
		})
		return nil
	}, nil
}

// withdrawLocked sends rec's goodbyes, unless Close already did.
func (d *SeedDirectory) withdrawLocked(rec *seedRecord) {
	if _, ok := d.records[rec]; !ok {
		return
	}
	delete(d.records, rec)
	for _, s := range rec.servers {
		s.Shutdown() // sends the goodbye, then closes its sockets
	}
	d.cfg.logger.Info("mdns: seed record withdrawn", slog.String(logKeyInstance, rec.instance))
}

// Close withdraws every announced record (goodbyes), stops browsing,
// closes the sockets, waits for every goroutine it started and closes the
// event channel. It is idempotent and safe to call concurrently; it
// returns nil (also before Start, after which Start fails with
// [discovery.ErrClosed]).
func (d *SeedDirectory) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == stateClosed {
		return nil
	}
	started := d.state == stateStarted
	d.state = stateClosed
	for rec := range d.records {
		d.withdrawLocked(rec)
	}
	if !started {
		return nil
	}
	d.cancel()
	d.lis.close()
	d.wg.Wait()
	close(d.events)
	d.cfg.logger.Info("mdns seed directory closed")
	return nil
}

var _ discovery.SeedDirectory = (*SeedDirectory)(nil)

// seedObservations is the SeedDirectory's listener decoder: entries, then
// goodbyes, then instances shown alive.
func seedObservations(m *dns.Msg) []observation {
	entries, gone, alive := seedSightings(m)
	var obs []observation
	for i := range entries {
		obs = append(obs, observation{kind: obsSeedEntry, instance: strings.ToLower(entries[i].instance), seed: &entries[i]})
	}
	for _, inst := range gone {
		obs = append(obs, observation{kind: obsSeedGone, instance: inst})
	}
	for _, inst := range alive {
		obs = append(obs, observation{kind: obsSeedAlive, instance: inst})
	}
	return obs
}

// seedState is what the seed core knows about one socket.
type seedState struct {
	sock    discovery.SeedSocket
	ttl     time.Duration
	expires time.Time
}

// seedCore owns the seed socket table and is the only sender on the
// event channel.
type seedCore struct {
	log    *slog.Logger
	out    chan<- discovery.SeedEvent
	stats  *seedCounters
	local  []*net.IPNet
	expiry time.Duration // 0: the records' TTL
	isOwn  func(string) bool
	socks  map[string]*seedState // by lowercased instance
}

func (c *seedCore) run(ctx context.Context, obs <-chan observation) {
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for {
		var ok bool
		select {
		case <-ctx.Done():
			return
		case o := <-obs:
			ok = c.observe(ctx, o)
		case now := <-sweep.C:
			ok = c.sweep(ctx, now)
		}
		if !ok {
			return
		}
	}
}

func (c *seedCore) send(ctx context.Context, kind discovery.EventKind, s discovery.SeedSocket) bool {
	select {
	case c.out <- discovery.SeedEvent{Kind: kind, Socket: s}:
		return true
	case <-ctx.Done():
		return false
	}
}

// observe acts on one observation; false means stop.
func (c *seedCore) observe(ctx context.Context, o observation) bool {
	if c.isOwn(o.instance) {
		return true
	}
	st := c.socks[o.instance]
	now := time.Now()
	switch o.kind {
	case obsSeedEntry:
		e := o.seed
		sock, err := seedSocketFrom(e.instance, e.port, e.txt, e.v4, c.local)
		if err != nil {
			c.stats.refused.Add(1)
			c.log.DebugContext(ctx, "mdns: refused seed record", slog.String(logKeyInstance, e.instance), slog.Any(logKeyErr, err))
			return true
		}
		ttl := e.ttl
		if c.expiry > 0 {
			ttl = c.expiry
		}
		if st == nil {
			if len(c.socks) >= maxSeedSockets {
				c.stats.overflow.Add(1)
				return true
			}
			c.socks[o.instance] = &seedState{sock: sock, ttl: ttl, expires: now.Add(ttl)}
			c.log.InfoContext(ctx, "mdns: seed socket joined", slog.String(logKeyInstance, sock.Instance), slog.String("addr", sock.Addr))
			return c.send(ctx, discovery.Joined, sock)
		}
		st.ttl, st.expires = ttl, now.Add(ttl)
		if st.sock == sock {
			return true
		}
		// The seed never changes a record in place (it ignores updates);
		// whoever does gets a new socket.
		old := st.sock
		st.sock = sock
		c.log.InfoContext(ctx, "mdns: seed socket moved", slog.String(logKeyInstance, sock.Instance), slog.String("from", old.Addr), slog.String("addr", sock.Addr))
		return c.send(ctx, discovery.Left, old) && c.send(ctx, discovery.Joined, sock)
	case obsSeedGone:
		if st == nil {
			return true
		}
		delete(c.socks, o.instance)
		c.log.InfoContext(ctx, "mdns: seed socket left", slog.String(logKeyInstance, st.sock.Instance), slog.String("why", "goodbye"))
		return c.send(ctx, discovery.Left, st.sock)
	case obsSeedAlive:
		if st != nil {
			st.expires = now.Add(st.ttl)
		}
	}
	return true
}

// sweep reports sockets whose records expired.
func (c *seedCore) sweep(ctx context.Context, now time.Time) bool {
	for inst, st := range c.socks {
		if now.Before(st.expires) {
			continue
		}
		delete(c.socks, inst)
		c.log.InfoContext(ctx, "mdns: seed socket left", slog.String(logKeyInstance, st.sock.Instance), slog.String("why", "expired"))
		if !c.send(ctx, discovery.Left, st.sock) {
			return false
		}
	}
	return true
}
