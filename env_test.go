package colugo

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport"
)

func TestDiscoveryFromEnv(t *testing.T) {
	prog := discovery.Static("10.0.0.9:1")
	for _, tc := range []struct {
		env     string
		want    string // type of the result, or "prog"
		scope   Scope
		wantErr bool
	}{
		{"", "prog", ScopeNetwork, false}, // a program's Static is opaque: not host-only
		{"  ", "prog", ScopeNetwork, false},
		{"local", "*local.Registry", ScopeLocal, false},
		{"none", "*discovery.static", ScopeNone, false},
		{"static:127.0.0.1:7001", "*discovery.static", ScopeLoopback, false},
		{"static:127.0.0.1:7001,127.0.0.1:7002", "*discovery.static", ScopeLoopback, false},
		{"local,static:127.0.0.1:7001", "*discovery.multi", ScopeLoopback, false},
		{"static:127.0.0.1:7001,local", "*discovery.multi", ScopeLoopback, false},
		{"local,static:127.0.0.1:7001,10.0.0.5:7001", "*discovery.multi", ScopeNetwork, false},
		{"mdns", "*mdns.Discovery", ScopeNetwork, false}, // constructed only: nothing is started here
		{"local,mdns", "*discovery.multi", ScopeNetwork, false},
		{"carrier-pigeon", "", 0, true},
		{"127.0.0.1:7001", "", 0, true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(EnvDiscovery, tc.env)
			d, scope, err := discoveryFromEnv(prog)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), EnvDiscovery) {
					t.Fatalf("err = %v, want ErrInvalidOption naming %s", err, EnvDiscovery)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if scope != tc.scope {
				t.Errorf("scope %v, want %v", scope, tc.scope)
			}
			got := typeString(d)
			if tc.want == "prog" {
				if d != prog {
					t.Fatalf("got %s, want the program's own discovery", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	// A program that already uses a host-local registry keeps its directory.
	t.Setenv(EnvDiscovery, "local")
	own := local.New(local.WithDir(t.TempDir()))
	if d, sc, _ := discoveryFromEnv(own); d != own || sc != ScopeLocal {
		t.Fatal("COLUGO_DISCOVERY=local replaced the program's own local registry")
	}
	// Unset: a bare registry is host-local, the default (nil) is not.
	t.Setenv(EnvDiscovery, "")
	if _, sc, _ := discoveryFromEnv(own); sc != ScopeLocal {
		t.Errorf("program's registry: scope %v, want host-local", sc)
	}
	if _, sc, _ := discoveryFromEnv(nil); sc != ScopeNetwork {
		t.Errorf("default discovery: scope %v, want network", sc)
	}
}

// TestDiscoveryScope pins the scope order none < local < loopback seeds <
// network: a value's scope is its widest mechanism's.
func TestDiscoveryScope(t *testing.T) {
	for v, want := range map[string]Scope{
		"none":                        ScopeNone,
		"local":                       ScopeLocal,
		"none,local":                  ScopeLocal,
		"static:127.0.0.1:7001":       ScopeLoopback,
		"static:127.9.9.9:7001":       ScopeLoopback,
		"static:[::1]:7001":           ScopeLoopback,
		"local,static:127.0.0.1:1,::": ScopeNetwork, // "::" is not host:port, so not loopback
		"static:localhost:7001":       ScopeNetwork, // a name: resolving it may query DNS
		"static:10.0.0.5:7001":        ScopeNetwork,
		"static:0.0.0.0:7001":         ScopeNetwork,
		"mdns":                        ScopeNetwork,
		"local,mdns":                  ScopeNetwork,
		"static:127.0.0.1:1,mdns":     ScopeNetwork,
	} {
		got, err := DiscoveryScope(v)
		if err != nil || got != want {
			t.Errorf("DiscoveryScope(%q) = %v, %v; want %v", v, got, err, want)
		}
		if got.HostOnly() != (want <= ScopeLoopback) {
			t.Errorf("%v.HostOnly() = %v", got, got.HostOnly())
		}
	}
	if _, err := DiscoveryScope("lan"); err == nil {
		t.Error(`DiscoveryScope("lan") did not fail`)
	}
	if !(ScopeNone < ScopeLocal && ScopeLocal < ScopeLoopback && ScopeLoopback < ScopeNetwork) {
		t.Error("scopes out of order")
	}
}

// TestAddrCheck is the dial policy's table.
func TestAddrCheck(t *testing.T) {
	const abs = "unix:@colugo-0123456789abcdef-router"
	hostOnly, lan, off := addrCheck{on: true, hostOnly: true}, addrCheck{on: true}, addrCheck{}
	for _, tc := range []struct {
		c                    addrCheck
		addr, source, router string
		want                 bool
	}{
		// Host-only: loopback and colugo abstract sockets, whatever the source.
		{hostOnly, "127.0.0.1:7001", fromDiscovery, "", true},
		{hostOnly, "127.0.0.2:7001", fromDescribe, "127.0.0.1:7000", true},
		{hostOnly, "[::1]:7001", fromDiscovery, "", true},
		{hostOnly, abs, fromDescribe, "127.0.0.1:7000", true},
		{hostOnly, "10.77.0.2:7001", fromDiscovery, "", false},
		{hostOnly, "10.77.0.2:7001", fromDescribe, "127.0.0.1:7000", false},
		{hostOnly, "0.0.0.0:7001", fromDiscovery, "", false},
		{hostOnly, "localhost:7001", fromDiscovery, "", false},
		{hostOnly, "unix:/run/docker.sock", fromDescribe, "127.0.0.1:7000", false},
		{hostOnly, "unix:@other", fromDescribe, "127.0.0.1:7000", false},
		{hostOnly, "unix:@colugo-../x", fromDescribe, "127.0.0.1:7000", false},
		{hostOnly, "inproc:1/pub", fromDiscovery, "", false},
		// Network scope: discovery's TCP addresses are what discovery allows...
		{lan, "10.77.0.2:7001", fromDiscovery, "", true},
		{lan, "camera.local:7001", fromDiscovery, "", true},
		// ...but never a Unix socket path,
		{lan, "unix:/tmp/x.sock", fromDiscovery, "", false},
		{lan, "unix:/tmp/x.sock", fromDescribe, "10.77.0.2:7000", false},
		{lan, abs, fromDescribe, "10.77.0.2:7000", true},
		// and $describe may not redirect to another host than the router's.
		{lan, "10.77.0.2:7001", fromDescribe, "10.77.0.2:7000", true},
		{lan, "10.77.0.3:7001", fromDescribe, "10.77.0.2:7000", false},
		{lan, "127.0.0.1:7001", fromDescribe, "10.77.0.2:7000", false},
		{lan, "127.0.0.5:7001", fromDescribe, "127.0.0.1:7000", true},
		{lan, "10.77.0.2:7001", fromDescribe, "127.0.0.1:7000", false},
		{lan, "h.local:7001", fromDescribe, "h.local:7000", true},
		{lan, "other.local:7001", fromDescribe, "h.local:7000", false},
		{lan, "10.77.0.2:7001", fromDescribe, "unix:@colugo-1", false},
		// In-process transports: nothing is checked.
		{off, "inproc:1/pub", fromDescribe, "inproc:1/router", true},
	} {
		if got := tc.c.allowed(tc.addr, tc.source, tc.router); got != tc.want {
			t.Errorf("%+v.allowed(%q, %s, %q) = %v, want %v", tc.c, tc.addr, tc.source, tc.router, got, tc.want)
		}
	}
}

// A host-only node refuses a transport that listens beyond loopback.
func TestCheckListen(t *testing.T) {
	hostOnly := addrCheck{on: true, hostOnly: true}
	for _, tc := range []struct {
		ep   transport.Endpoint
		c    addrCheck
		fail bool
	}{
		{transport.Endpoint{Router: "127.0.0.1:1", Pub: "127.0.0.1:2", LocalRouter: "unix:@colugo-ab-router", LocalPub: "unix:@colugo-ab-pub"}, hostOnly, false},
		{transport.Endpoint{Router: "0.0.0.0:1", Pub: "127.0.0.1:2"}, hostOnly, true},
		{transport.Endpoint{Router: "127.0.0.1:1", Pub: "[::]:2"}, hostOnly, true},
		{transport.Endpoint{Router: "127.0.0.1:1", Pub: "127.0.0.1:2", LocalRouter: "unix:/tmp/s"}, hostOnly, true},
		{transport.Endpoint{Router: "0.0.0.0:1", Pub: "0.0.0.0:2"}, addrCheck{on: true}, false},
		{transport.Endpoint{Router: "inproc:1/router"}, addrCheck{}, false},
	} {
		if err := checkListen(tc.c, tc.ep); (err != nil) != tc.fail || (err != nil && !errors.Is(err, ErrInvalidOption)) {
			t.Errorf("checkListen(%+v, %+v) = %v, want failure %v", tc.c, tc.ep, err, tc.fail)
		}
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:7001":   "127.0.0.1:7001",
		"[::]:7001":      "127.0.0.1:7001",
		"10.0.0.5:7001":  "10.0.0.5:7001",
		"inproc:3/pub":   "inproc:3/pub",
		"127.0.0.1:7001": "127.0.0.1:7001",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

func typeString(v any) string { return fmt.Sprintf("%T", v) }
