package colugo

import (
	"errors"
	"fmt"
	"log/slog"
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
// With "local" (alone or with static seeds on loopback) the default
// transport also listens on 127.0.0.1 only.
const EnvDiscovery = "COLUGO_DISCOVERY"

// discoveryFromEnv returns the discovery the environment asks for, or
// fallback when the variable is unset.
func discoveryFromEnv(fallback discovery.Discovery) (discovery.Discovery, error) {
	v, ok := os.LookupEnv(EnvDiscovery)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return fallback, nil
	}
	if _, isLocal := fallback.(*local.Registry); isLocal && v == "local" {
		return fallback, nil // already what the operator asks; keep the program's registry directory
	}
	d, err := parseDiscovery(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s=%q: %w", ErrInvalidOption, EnvDiscovery, v, err)
	}
	return d, nil
}

// parseDiscovery reads a COLUGO_DISCOVERY value: comma-separated mechanisms,
// where "static:" starts a list of host:port seeds that runs to the next
// mechanism name.
func parseDiscovery(v string) (discovery.Discovery, error) {
	var ds []discovery.Discovery
	var seeds []string
	inStatic := false
	for _, tok := range strings.Split(v, ",") {
		tok = strings.TrimSpace(tok)
		switch {
		case tok == "local":
			ds = append(ds, local.New())
			inStatic = false
		case tok == "none":
			ds = append(ds, discovery.Static())
			inStatic = false
		case tok == "mdns":
			ds = append(ds, mdns.New())
			inStatic = false
		case strings.HasPrefix(tok, "static:"):
			seeds = append(seeds, strings.TrimPrefix(tok, "static:"))
			inStatic = true
		case inStatic && tok != "":
			seeds = append(seeds, tok)
		default:
			return nil, fmt.Errorf("unknown mechanism %q (want local, mdns, static:host:port,... or none)", tok)
		}
	}
	if len(seeds) > 0 {
		ds = append(ds, discovery.Static(seeds...))
	}
	if len(ds) == 1 {
		return ds[0], nil
	}
	return discovery.Multi(ds...), nil
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

// hostOnly reports whether d can only find nodes on this host, so the
// transport need not listen beyond loopback.
func hostOnly(d discovery.Discovery) bool {
	_, ok := d.(*local.Registry)
	return ok
}

// defaultTransport is the zmq transport: on loopback for host-only
// discovery, else on every interface (peers on the LAN must reach it).
func defaultTransport(log *slog.Logger, d discovery.Discovery) (transport.Transport, error) {
	host := "0.0.0.0"
	if hostOnly(d) {
		host = "127.0.0.1"
	}
	t, err := zmq.New(zmq.WithLogger(log), zmq.WithHost(host))
	if err != nil {
		return nil, fmt.Errorf("colugo: transport: %w", err)
	}
	return t, nil
}
