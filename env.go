package colugo

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/zmq"
)

// EnvDiscovery is the environment variable through which an operator
// chooses discovery for every node of a program, whatever its code asked:
//
//	COLUGO_DISCOVERY=local                        host-local registry only: no packet leaves the host
//	COLUGO_DISCOVERY=static:10.0.0.5:7001,10.0.0.6:7001   fixed seeds (router addresses)
//	COLUGO_DISCOVERY=local,static:host:port       several at once
//	COLUGO_DISCOVERY=none                         no discovery: this node only
//
// "mdns" is reserved for LAN discovery and refused until it ships.
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
			return nil, fmt.Errorf("mdns discovery is not available yet")
		case strings.HasPrefix(tok, "static:"):
			seeds = append(seeds, strings.TrimPrefix(tok, "static:"))
			inStatic = true
		case inStatic && tok != "":
			seeds = append(seeds, tok)
		default:
			return nil, fmt.Errorf("unknown mechanism %q (want local, static:host:port,... or none)", tok)
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

// defaultDiscovery is used when neither options nor the environment say.
func defaultDiscovery() discovery.Discovery { return local.New() }

// defaultTransport is the zmq transport on loopback.
func defaultTransport(log *slog.Logger) (transport.Transport, error) {
	t, err := zmq.New(zmq.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("colugo: transport: %w", err)
	}
	return t, nil
}
