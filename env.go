package colugo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/discovery/mdns"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/zmq"
)

// EnvDiscovery is the environment variable through which an operator
// chooses discovery for every node of a program, whatever its code asked:
//
//	COLUGO_DISCOVERY=local                        host-local registry only: no packet leaves the host
//	COLUGO_DISCOVERY=static:10.0.0.5:7001,10.0.0.6:7001   fixed seeds (router addresses)
//	COLUGO_DISCOVERY=local,static:host:port       several at once
//	COLUGO_DISCOVERY=mdns                         mDNS/DNS-SD on the LAN only
//	COLUGO_DISCOVERY=local,mdns                   both (the default when the variable is unset)
//	COLUGO_DISCOVERY=none                         no discovery: this node only
//
// A host-only value (every mechanism is none, local or static seeds whose
// hosts are loopback IP addresses; see [Scope]) makes the node host-only:
// the default transport listens on 127.0.0.1 (and abstract Unix sockets)
// only, NewNode fails if a transport given with [WithTransport] listens
// anywhere else, and the node never dials an address that is not a
// loopback IP address or a colugo abstract Unix socket ("unix:@colugo-…"),
// whatever discovery or a peer's $describe says. Unset, the default is
// "local,mdns": listening on every interface, mDNS on every multicast
// interface.
const EnvDiscovery = "COLUGO_DISCOVERY"

// Scope is how far a discovery setting reaches, in increasing order:
// comparing two scopes tells whether one setting asks for more than
// another allows. The scope of a COLUGO_DISCOVERY value is the largest of
// its mechanisms' ([DiscoveryScope]).
type Scope int

// Scopes, from the narrowest.
const (
	ScopeNone     Scope = iota // "none": no other node
	ScopeLocal                 // "local": nodes in this host's registry
	ScopeLoopback              // "static:" seeds that are all loopback IP addresses
	ScopeNetwork               // "mdns", or "static:" seeds elsewhere (a host name counts: resolving it may query DNS)
)

// HostOnly reports whether s reaches no further than this host (ScopeNone
// to ScopeLoopback): then a node neither listens beyond loopback nor dials
// anything but loopback and colugo's abstract Unix sockets.
func (s Scope) HostOnly() bool { return s <= ScopeLoopback }

func (s Scope) String() string {
	switch s {
	case ScopeNone:
		return "none"
	case ScopeLocal:
		return "host-local"
	case ScopeLoopback:
		return "loopback"
	case ScopeNetwork:
		return "network"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// DiscoveryScope returns the scope of a COLUGO_DISCOVERY value (the same
// syntax), or an error if it does not parse. Tools that take a discovery
// setting of their own use it to refuse one that asks for more than the
// operator's variable allows; the colugo command does so for --discovery.
func DiscoveryScope(v string) (Scope, error) {
	_, sc, err := parseDiscovery(v)
	return sc, err
}

// discoveryFromEnv returns the discovery the environment asks for and its
// scope, or fallback when the variable is unset. The scope of a fallback
// is ScopeLocal for a bare *local.Registry and ScopeNetwork for anything
// else (nil, the default, included): colugo cannot see inside other
// Discovery values, so only the operator's variable makes them host-only.
func discoveryFromEnv(fallback discovery.Discovery) (discovery.Discovery, Scope, error) {
	v, ok := os.LookupEnv(EnvDiscovery)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		if _, isLocal := fallback.(*local.Registry); isLocal {
			return fallback, ScopeLocal, nil
		}
		return fallback, ScopeNetwork, nil
	}
	if _, isLocal := fallback.(*local.Registry); isLocal && v == "local" {
		return fallback, ScopeLocal, nil // already what the operator asks; keep the program's registry directory
	}
	d, sc, err := parseDiscovery(v)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s=%q: %w", ErrInvalidOption, EnvDiscovery, v, err)
	}
	return d, sc, nil
}

// parseDiscovery reads a COLUGO_DISCOVERY value: comma-separated mechanisms,
// where "static:" starts a list of host:port seeds that runs to the next
// mechanism name. It also returns the value's scope.
func parseDiscovery(v string) (discovery.Discovery, Scope, error) {
	var ds []discovery.Discovery
	var seeds []string
	sc := ScopeNone
	widen := func(s Scope) { sc = max(sc, s) }
	inStatic := false
	for _, tok := range strings.Split(v, ",") {
		tok = strings.TrimSpace(tok)
		switch {
		case tok == "local":
			ds = append(ds, local.New())
			widen(ScopeLocal)
			inStatic = false
		case tok == "none":
			ds = append(ds, discovery.Static())
			inStatic = false
		case tok == "mdns":
			ds = append(ds, mdns.New())
			widen(ScopeNetwork)
			inStatic = false
		case strings.HasPrefix(tok, "static:"):
			seeds = append(seeds, strings.TrimPrefix(tok, "static:"))
			inStatic = true
		case inStatic && tok != "":
			seeds = append(seeds, tok)
		default:
			return nil, 0, fmt.Errorf("unknown mechanism %q (want local, mdns, static:host:port,... or none)", tok)
		}
	}
	for _, a := range seeds {
		if loopbackTCP(a) {
			widen(ScopeLoopback)
		} else {
			widen(ScopeNetwork)
		}
	}
	if len(seeds) > 0 {
		ds = append(ds, discovery.Static(seeds...))
	}
	if len(ds) == 1 {
		return ds[0], sc, nil
	}
	return discovery.Multi(ds...), sc, nil
}

// loopbackTCP reports whether addr is host:port with a loopback IP address
// as host (127.0.0.0/8, ::1). Names, "localhost" included, do not count:
// resolving one may send a DNS query out of a real interface.
func loopbackTCP(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// abstractPrefix starts the abstract Unix socket addresses that
// transport/zmq listens on: "unix:@colugo-" and hex digits and dashes.
const abstractPrefix = "unix:@colugo-"

// colugoAbstract reports whether addr names one of colugo's own abstract
// Unix sockets, never a file-system path.
func colugoAbstract(addr string) bool {
	rest, ok := strings.CutPrefix(addr, abstractPrefix)
	if !ok || rest == "" || len(rest) > 64 {
		return false
	}
	for _, c := range rest {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// hostOnlyAddr reports whether addr is one a host-only node may listen on
// or dial: a loopback IP address or a colugo abstract Unix socket.
func hostOnlyAddr(addr string) bool { return loopbackTCP(addr) || colugoAbstract(addr) }

// addrCheck is the node's dial policy (see allowed); the zero value, for
// in-process transports, allows everything.
type addrCheck struct {
	on       bool // a network transport: addresses are checked
	hostOnly bool
}

// Where an address to dial came from, for allowed and the refusal log.
const (
	fromDiscovery = "discovery" // Peer.Router or Peer.Pub of a discovery event
	fromDescribe  = "$describe" // a peer's own description of itself
)

// allowed reports whether the node may dial addr, learnt from source
// (fromDiscovery or fromDescribe) for a peer that discovery reached at
// router. The rules:
//   - host-only: only loopback IP addresses and colugo abstract sockets;
//   - any scope: a Unix socket only if it is a colugo abstract one (never
//     a file-system path, which a peer could point at any local socket);
//   - any scope, from $describe: a TCP address only on the IP address
//     discovery reached the router at (so a LAN peer cannot redirect us
//     to another host), or any loopback address when that was loopback.
//
// Discovery's own addresses are otherwise what discovery allows.
func (c addrCheck) allowed(addr, source, router string) bool {
	switch {
	case !c.on:
		return true
	case strings.HasPrefix(addr, "unix:"):
		return colugoAbstract(addr)
	case c.hostOnly:
		return loopbackTCP(addr)
	case source == fromDiscovery:
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	rhost, _, rerr := net.SplitHostPort(router)
	if err != nil || rerr != nil {
		return false
	}
	if loopbackTCP(router) {
		return loopbackTCP(addr)
	}
	ip, rip := net.ParseIP(host), net.ParseIP(rhost)
	if ip != nil && rip != nil {
		return ip.Equal(rip)
	}
	return host == rhost
}

// refuse counts and logs an address the node will not dial.
func (n *Node) refuse(addr, source, peerName string) {
	n.addrRefused.Add(1)
	n.log.Debug("address refused: not dialled", slog.String(keyEndpoint, addr), slog.String("from", source),
		slog.String(keyPeer, peerName), slog.Bool("host_only", n.addrs.hostOnly))
}

// checkListen fails when a host-only node's transport listens beyond
// loopback (a transport given with WithTransport, which NewNode does not
// configure).
func checkListen(c addrCheck, ep transport.Endpoint) error {
	if !c.on || !c.hostOnly {
		return nil
	}
	for _, a := range []string{ep.Router, ep.Pub, ep.LocalRouter, ep.LocalPub} {
		if a != "" && !hostOnlyAddr(a) {
			return fmt.Errorf("%w: %s is host-only but the transport listens on %s (use 127.0.0.1)", ErrInvalidOption, EnvDiscovery, a)
		}
	}
	return nil
}

// defaultDiscovery is used when neither options nor the environment say:
// the host-local registry, and mDNS on every multicast interface when the
// machine has one (a machine with none, say offline, still finds the nodes
// on itself).
func defaultDiscovery(log *slog.Logger) discovery.Discovery {
	return discovery.Multi(local.New(local.WithLogger(log)), &optional{inner: mdns.New(mdns.WithLogger(log)), log: log})
}

// optional is a Discovery that, when its inner mechanism finds no
// interface to work on, starts anyway and does nothing.
type optional struct {
	inner discovery.Discovery
	log   *slog.Logger
	idle  chan discovery.Event // the channel handed out when disabled; closed by Close
	once  sync.Once
}

func (o *optional) Start(self discovery.Peer) (<-chan discovery.Event, error) {
	ch, err := o.inner.Start(self)
	if errors.Is(err, mdns.ErrNoInterface) {
		o.log.Warn("mDNS discovery disabled: no multicast interface; finding peers on this host only", slog.Any(keyError, err))
		o.idle = make(chan discovery.Event)
		return o.idle, nil
	}
	return ch, err
}

// Settled is the inner mechanism's when it is a Settler and runs; a
// disabled one has nothing to find.
func (o *optional) Settled() <-chan struct{} {
	if st, ok := o.inner.(discovery.Settler); ok && o.idle == nil {
		return st.Settled()
	}
	return settledAtOnce
}

var settledAtOnce = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (o *optional) Update(self discovery.Peer) error {
	if o.idle != nil {
		return nil
	}
	return o.inner.Update(self)
}

func (o *optional) Close() error {
	if o.idle != nil {
		o.once.Do(func() { close(o.idle) })
		return nil
	}
	return o.inner.Close()
}

// defaultTransport is the zmq transport: on loopback for host-only
// discovery, else on every interface (peers on the LAN must reach it).
func defaultTransport(log *slog.Logger, hostOnly bool) (transport.Transport, error) {
	host := "0.0.0.0"
	if hostOnly {
		host = "127.0.0.1"
	}
	t, err := zmq.New(zmq.WithLogger(log), zmq.WithHost(host))
	if err != nil {
		return nil, fmt.Errorf("colugo: transport: %w", err)
	}
	return t, nil
}

// EnvKey is the environment variable that sets the network key of every
// node of a program (it wins over WithKey): 32 or more hex digits, or any
// other string of at least 16 bytes.
const EnvKey = "COLUGO_KEY"

// keyFromEnv returns the key COLUGO_KEY sets, if any.
func keyFromEnv() ([]byte, bool) {
	v, ok := os.LookupEnv(EnvKey)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return nil, false
	}
	if len(v) >= 32 && len(v)%2 == 0 {
		if b, err := hex.DecodeString(v); err == nil {
			return b, true
		}
	}
	return []byte(v), true
}
