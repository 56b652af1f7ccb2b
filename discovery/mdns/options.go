package mdns

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Option configures a [Discovery]. Options are comparable values with a
// String method; the unexported method keeps the set closed.
type Option interface {
	apply(*config)
}

type config struct {
	ifaces  []string
	logger  *slog.Logger
	refresh time.Duration
	expiry  time.Duration // 0: derived from refresh
	grace   time.Duration
}

// Defaults of the timing options.
const (
	defaultRefresh = 10 * time.Second
	// defaultGrace is how long a goodbye waits for the same node to
	// re-register (Update re-registers: goodbye, then a new announcement)
	// before it becomes Left. The re-registered node answers the query we
	// send 100 ms after the goodbye within milliseconds, so 1 s is ample.
	defaultGrace = time.Second
)

// expiryFor returns the default expiry for a refresh interval: three
// missed rounds plus slack for a slow answer.
func expiryFor(refresh time.Duration) time.Duration { return 3*refresh + 2*time.Second }

type ifacesOption string // names joined by ",": a comparable value

func (o ifacesOption) apply(c *config) {
	c.ifaces = nil
	if o != "" {
		c.ifaces = strings.Split(string(o), ",")
	}
}
func (o ifacesOption) String() string { return "mdns.WithInterfaces(" + string(o) + ")" }

// WithInterfaces sets the network interfaces, by name, on which the node is
// announced and peers are looked for. The advertised addresses are the IPv4
// addresses of these interfaces. Each must exist, be up and support
// multicast, or [Discovery.Start] fails.
//
// Default (no names): every interface that is up, multicast-capable, not
// loopback and has an IPv4 address. When there is none, Start fails with
// [ErrNoInterface] rather than announce nothing. Interfaces are chosen once,
// at Start; addresses that change later are not followed.
func WithInterfaces(names ...string) Option { return ifacesOption(strings.Join(names, ",")) }

type loggerOption struct{ l *slog.Logger }

func (o loggerOption) apply(c *config) { c.logger = o.l }
func (o loggerOption) String() string  { return "mdns.WithLogger(...)" }

// WithLogger sets the logger: Info when a peer joins or leaves and at
// start, Warn when the announcement cannot be renewed, Debug for updates,
// ignored entries and packets, and browse rounds. Default: a logger that
// discards everything (never [slog.Default]); nil also means discard.
//
// zeroconf itself logs a few errors through the standard library's global
// log package; that output cannot be redirected from here.
func WithLogger(l *slog.Logger) Option { return loggerOption{l} }

type refreshOption time.Duration

func (o refreshOption) apply(c *config) { c.refresh = time.Duration(o) }
func (o refreshOption) String() string {
	return fmt.Sprintf("mdns.WithRefreshInterval(%v)", time.Duration(o))
}

// WithRefreshInterval sets how often a fresh browse round asks the network
// for every colugo node (one multicast query, and one answer from each
// peer). Rounds find peers whose announcement was lost or that restarted
// unnoticed, and keep known peers from expiring. Shorter means quicker
// recovery and more packets: each round's session queries at its start
// and, if it lives that long, 4 s later, and every node answers every
// query (see the package documentation). Must be at least 100 ms, or
// Start fails. A [SeedDirectory] asks, the same way, for every seed socket.
// Default: 10 s.
func WithRefreshInterval(d time.Duration) Option { return refreshOption(d) }

type expiryOption time.Duration

func (o expiryOption) apply(c *config) { c.expiry = time.Duration(o) }
func (o expiryOption) String() string {
	return fmt.Sprintf("mdns.WithExpiry(%v)", time.Duration(o))
}

// WithExpiry sets how long a peer may go unseen (no answer to any round)
// before it is reported Left. A peer that closes cleanly sends a goodbye
// and is reported Left about 1 s later whatever this value; expiry covers
// peers that crash or vanish. It must be longer than the refresh interval,
// or Start fails. Default: 3 × the refresh interval + 2 s (32 s); for a
// [SeedDirectory], the TTL of the seed socket's SRV and A records (120 s
// from the seed) after it was last seen.
func WithExpiry(d time.Duration) Option { return expiryOption(d) }

// checkTimes refuses a refresh interval below minGap and an expiry (0:
// none given) that does not exceed it.
func checkTimes(refresh, expiry time.Duration) error {
	switch {
	case refresh < minGap:
		return fmt.Errorf("%s invalid option %v: at least %v", errPrefix, refreshOption(refresh), minGap)
	case expiry != 0 && expiry <= refresh:
		return fmt.Errorf("%s invalid option %v: must exceed the refresh interval %v", errPrefix, expiryOption(expiry), refresh)
	}
	return nil
}
