package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/libp2p/zeroconf/v2"

	"github.com/colugo-go/colugo/discovery"
)

// ErrNoInterface is returned by [Discovery.Start] when no interface can
// carry mDNS: none matches the default selection (up, multicast, not
// loopback, with an IPv4 address), or those named by [WithInterfaces] have
// no IPv4 address.
var ErrNoInterface = errors.New(errPrefix + " no usable network interface")

var errNotStarted = errors.New(errPrefix + " not started")

const eventBuffer = 16 // absorbs the burst of Joined events of the first round

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// Log attribute keys.
const (
	logKeyPeer     = "peer"
	logKeyName     = "name"
	logKeyRouter   = "router"
	logKeyInstance = "instance"
	logKeyIface    = "iface"
	logKeyErr      = "err"
)

// Discovery announces a node with mDNS/DNS-SD and finds the others on the
// LAN (see the package documentation for how).
//
// Like every [discovery.Discovery] it is used by one Node: [Discovery.Start]
// once, then [Discovery.Update] any number of times, then
// [Discovery.Close]. Its methods are safe for concurrent use. The zero
// value is not usable; call [New].
//
// It is a [discovery.Settler]: [Discovery.Settled] closes once the first
// browse session after Start (1 s) is over and the Joined events of the
// peers it found have been sent.
type Discovery struct {
	cfg    config
	cfgErr error
	stats  counters

	mu     sync.Mutex // guards everything below and serializes the methods
	state  int
	self   discovery.Peer
	ann    announcement
	ifaces []net.Interface
	ips    []string
	server *zeroconf.Server // nil after a failed re-registration
	lis    *listener
	events chan discovery.Event
	cancel context.CancelFunc
	wg     sync.WaitGroup

	settled chan struct{} // made by New, closed by the core (see Settled)
}

// counters back [Stats].
type counters struct {
	ignored, badPackets, skippedRecords, rounds, goodbyes, overflow atomic.Uint64
}

// Stats counts what a [Discovery] ignored or did since [New].
type Stats struct {
	// Ignored counts instances of colugo-go's service type seen in
	// responses that were not usable colugo announcements: TXT without v=1
	// or without a valid id, a bad port or pub, a cat longer than 64 bytes,
	// no IPv4 address. Instances of other types (the Python colugo's
	// _colugo._tcp among them) are not ours and not counted.
	Ignored uint64
	// BadPackets counts mDNS packets (of any service) that did not parse.
	BadPackets uint64
	// SkippedRecords counts records left out of packets that were read
	// without them because their data did not parse (python-zeroconf 0.47
	// adds such an NSEC record to each of its answers); the rest of those
	// packets was used.
	SkippedRecords uint64
	// Rounds counts browse rounds started (periodic or triggered).
	Rounds uint64
	// Goodbyes counts goodbye packets seen from known peers.
	Goodbyes uint64
	// Overflow counts announcements of new nodes not tracked because 4096
	// already were (a flood of records: anyone on the LAN can send them);
	// they are taken once others have left, as they announce again.
	Overflow uint64
}

// New returns a Discovery configured by opts. It does no I/O: interfaces
// are chosen and sockets opened by [Discovery.Start], which also reports
// invalid options, so that New can be used inline in a Node option.
func New(opts ...Option) *Discovery {
	cfg := config{refresh: defaultRefresh, grace: defaultGrace}
	for _, o := range opts {
		o.apply(&cfg)
	}
	d := &Discovery{cfg: cfg, settled: make(chan struct{})}
	if cfg.logger == nil {
		d.cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.expiry == 0 {
		d.cfg.expiry = expiryFor(cfg.refresh)
	}
	d.cfgErr = checkTimes(cfg.refresh, d.cfg.expiry)
	return d
}

// Stats returns the counters. It is safe to call at any time.
func (d *Discovery) Stats() Stats {
	return Stats{
		Ignored:        d.stats.ignored.Load(),
		Overflow:       d.stats.overflow.Load(),
		BadPackets:     d.stats.badPackets.Load(),
		SkippedRecords: d.stats.skippedRecords.Load(),
		Rounds:         d.stats.rounds.Load(),
		Goodbyes:       d.stats.goodbyes.Load(),
	}
}

// chooseInterfaces resolves the configured interface names (or the
// default selection) and returns them with their IPv4 addresses.
func chooseInterfaces(names []string) ([]net.Interface, []string, []*net.IPNet, error) {
	var cands []net.Interface
	if len(names) == 0 {
		all, err := net.Interfaces()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s list interfaces: %w", errPrefix, err)
		}
		for _, i := range all {
			if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagLoopback == 0 {
				cands = append(cands, i)
			}
		}
	} else {
		for _, n := range names {
			i, err := net.InterfaceByName(n)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s interface %q: %w", errPrefix, n, err)
			}
			if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagMulticast == 0 {
				return nil, nil, nil, fmt.Errorf("%s interface %q is down or has no multicast (flags %v)", errPrefix, n, i.Flags)
			}
			cands = append(cands, *i)
		}
	}
	var ifaces []net.Interface
	var ips []string
	var nets []*net.IPNet
	for _, i := range cands {
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		has := false
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				ips = append(ips, n.IP.To4().String())
				nets = append(nets, n)
				has = true
			}
		}
		if has {
			ifaces = append(ifaces, i)
		}
	}
	if len(ifaces) == 0 {
		if len(names) == 0 {
			return nil, nil, nil, fmt.Errorf("%w: no interface is up, multicast-capable, non-loopback and has an IPv4 address (use WithInterfaces)", ErrNoInterface)
		}
		return nil, nil, nil, fmt.Errorf("%w: no IPv4 address on %v", ErrNoInterface, names)
	}
	return ifaces, ips, nets, nil
}

func register(a announcement, ips []string, ifaces []net.Interface) (*zeroconf.Server, error) {
	s, err := zeroconf.RegisterProxy(a.instance, serviceType, domain, a.port, a.host, ips, a.txt, ifaces)
	if err != nil {
		return nil, fmt.Errorf("%s register %q: %w", errPrefix, a.instance, err)
	}
	return s, nil
}

// Start chooses the interfaces, registers self's DNS-SD instance, opens
// the sockets and starts browsing, then returns; it blocks only for that
// setup (milliseconds). The first browse round starts at once, so peers
// already on the network are reported within milliseconds, and a peer
// that starts later within about a second (usually much less). About 1 s
// after Start, once that round's session is over and its Joined events
// are on the channel, [Discovery.Settled] is closed.
//
// self.ID must be 1 to 64 letters, digits, '-', '_' or '.'; self.Router
// must be "host:port" (its port is announced, with the IPv4 addresses of
// the interfaces: the host part is not); self.Pub, when set, likewise;
// self.Catalog at most 64 bytes.
//
// Events for every other node (never self.ID) arrive on the returned
// channel: [discovery.Joined] when a node is first seen,
// [discovery.Updated] when its address, port, pub port or catalog changes,
// [discovery.Left] about 1 s after its goodbye, or when it has not answered
// for the expiry ([WithExpiry]). The Discovery closes the channel when
// Close returns, and at no other time. A consumer that stops reading pauses
// event processing (no event is dropped) until it reads again or Close is
// called.
//
// Start returns [discovery.ErrStarted] or [discovery.ErrClosed] when called
// twice or after Close, an error for invalid options or an invalid self,
// [ErrNoInterface] (wrapped) when no interface fits, and socket errors.
// After a failed Start nothing is left open and Start may be called again.
func (d *Discovery) Start(self discovery.Peer) (<-chan discovery.Event, error) {
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
	ann, err := announce(self)
	if err != nil {
		return nil, err
	}
	ifaces, ips, nets, err := chooseInterfaces(d.cfg.ifaces)
	if err != nil {
		return nil, err
	}
	log := d.cfg.logger
	lis, err := listen(ifaces, log, func() { d.stats.badPackets.Add(1) })
	if err != nil {
		return nil, err
	}
	lis.skipped = func(n int) { d.stats.skippedRecords.Add(uint64(n)) }
	lis.settleReq = make(chan struct{})
	srv, err := register(ann, ips, ifaces)
	if err != nil {
		lis.close()
		return nil, err
	}
	d.state, d.self, d.ann, d.ifaces, d.ips, d.server, d.lis = stateStarted, self, ann, ifaces, ips, srv, lis
	d.events = make(chan discovery.Event, eventBuffer)
	// The ctx lives only in the goroutines below; Close cancels it.
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel

	obs := make(chan observation, 32)
	kick := make(chan struct{}, 1)
	b := &browser{
		service: serviceType, ifaces: ifaces, refresh: d.cfg.refresh, kick: kick,
		wg: &d.wg, log: log, rounds: &d.stats.rounds, firstOver: lis.settle,
	}
	c := newCore(d.cfg, self.ID, strings.ToLower(ann.instance), nets, d.events, kick, d.settled, &d.stats)
	names := make([]string, len(ifaces))
	for i, ifc := range ifaces {
		names[i] = ifc.Name
	}
	log.InfoContext(ctx, "mdns discovery started", slog.String(logKeyPeer, self.ID),
		slog.String(logKeyInstance, ann.instance), slog.Any(logKeyIface, names), slog.Any("addrs", ips))
	d.wg.Go(func() { lis.run(ctx, obs) })
	d.wg.Go(func() { b.run(ctx) })
	d.wg.Go(func() { c.run(ctx, obs) })
	return d.events, nil
}

// Update re-announces self after its Catalog, Router or Pub changed (its
// ID must not change). Because zeroconf's SetText races with its
// responders and is invisible to Go browsers, Update withdraws the
// registration (a goodbye) and registers again; peers running this package
// see one Updated event within a few hundred milliseconds, never a Left.
// Other mDNS browsers may see a removal followed by an addition. An
// unchanged announcement is not re-sent. Update blocks for the
// re-registration (milliseconds).
//
// It returns [discovery.ErrClosed] after Close, an error before Start, an
// error for an invalid self (see [Discovery.Start]), and the registration
// error, after which the node is not announced until an Update succeeds.
func (d *Discovery) Update(self discovery.Peer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.state {
	case stateNew:
		return errNotStarted
	case stateClosed:
		return discovery.ErrClosed
	}
	if self.ID != d.self.ID {
		return fmt.Errorf("%s Update cannot change the ID (%q to %q)", errPrefix, d.self.ID, self.ID)
	}
	ann, err := announce(self)
	if err != nil {
		return err
	}
	if d.server != nil && ann.port == d.ann.port && ann.instance == d.ann.instance && slices.Equal(ann.txt, d.ann.txt) {
		d.self = self
		return nil
	}
	if d.server != nil {
		d.server.Shutdown() // sends the goodbye, then closes its sockets
		d.server = nil
	}
	srv, err := register(ann, d.ips, d.ifaces)
	if err != nil {
		d.cfg.logger.Warn("mdns: re-registration failed; not announced", slog.String(logKeyInstance, ann.instance), slog.Any(logKeyErr, err))
		return err
	}
	d.server, d.self, d.ann = srv, self, ann
	return nil
}

// Close sends goodbye packets (so peers running this package report Left
// about 1 s later), stops browsing, closes the sockets, waits for every
// goroutine it started and closes the event channel. It is idempotent and
// safe to call concurrently; it returns nil (also before Start, after
// which Start fails with [discovery.ErrClosed]).
func (d *Discovery) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == stateClosed {
		return nil
	}
	started := d.state == stateStarted
	d.state = stateClosed
	if !started {
		return nil
	}
	if d.server != nil {
		d.server.Shutdown()
		d.server = nil
	}
	d.cancel()
	d.lis.close()
	d.wg.Wait()
	close(d.events)
	d.cfg.logger.Info("mdns discovery closed", slog.String(logKeyPeer, d.self.ID))
	return nil
}

// Settled returns a channel that is closed once the first look is over
// (it implements [discovery.Settler]). The settle window is the first
// browse session: the round Start begins at once, whose query every peer
// already on the LAN answers within milliseconds, and which stays open for
// 1 s (that long even when a triggered round ends the session itself
// sooner). When the window is over, and the passive socket has read every
// packet that arrived in it, the channel is closed, after the Joined
// events for the peers those answers (and announcements) carried have
// been sent on Start's channel: they are in it, or were read from it.
// Peers that answer later, or start later, come after.
//
// It is the same channel on every call, made by [New]. It is closed at
// most once, never before Start succeeds, and never by Close: after a
// failed Start, or a Close within the window, it may stay open for ever.
// The consumer must keep reading events meanwhile: the channel buffers
// 16, and a first look that finds more waits for the consumer to read
// them before Settled can close.
func (d *Discovery) Settled() <-chan struct{} { return d.settled }

var (
	_ discovery.Discovery = (*Discovery)(nil)
	_ discovery.Settler   = (*Discovery)(nil)
)
