package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/netns"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
	"github.com/colugo-go/colugo/transport/zmq"
)

// The tests here run in private network namespaces (internal/netns), where
// a veth leads to a simulated host at 10.77.0.1: a packet to it would
// really leave through an interface, and tcpdump sees it, but nothing can
// leave the machine.

const nsWait = 20 * time.Second // generous: -race on two shared cores

// fakeDescriber is a peer's router that answers $describe with whatever
// describe returns: it can name any address it likes.
type fakeDescriber struct {
	id      string
	payload atomic.Pointer[[]byte]
}

func (f *fakeDescriber) HandlePublish(*transport.Message) {}
func (f *fakeDescriber) HandlePeerLost(string, error)     {}
func (f *fakeDescriber) HandleRequest(msg *transport.Message, rw transport.ReplyWriter) {
	p := f.payload.Load()
	if msg.Header.Kind != transport.KindControl || p == nil {
		return
	}
	_ = rw.Reply(&transport.Message{Name: msg.Name, Payload: *p, Header: wire.Header{
		Kind: transport.KindReply, Codec: "json", Type: "colugo.PeerInfo", Sender: f.id, RequestID: msg.Header.RequestID,
	}})
}

// startFake listens on loopback with a zmq transport whose $describe is
// describe(its endpoint), and returns the endpoint.
func startFake(t *testing.T, id string, describe func(transport.Endpoint) colugo.PeerInfo) transport.Endpoint {
	t.Helper()
	tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDescriber{id: id}
	ep, err := tr.Listen(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	info := describe(ep)
	info.ID = id
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	f.payload.Store(&b)
	return ep
}

// register announces p in the registry dir until the test ends.
func register(t *testing.T, dir string, p discovery.Peer) {
	t.Helper()
	r := local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))
	events, err := r.Start(p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range events { // drained: a reader that stops stalls the registry
		}
	})
	t.Cleanup(func() {
		_ = r.Close()
		wg.Wait()
	})
}

// unixTrap listens on a file-system Unix socket and counts the
// connections made to it.
func unixTrap(t *testing.T, path string) *atomic.Int64 {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return &n
}

// loopbackOnly fails t for any TCP listener in this namespace that is not
// on a loopback address.
func loopbackOnly(t *testing.T) {
	t.Helper()
	ls := netns.TCPListeners(t)
	if len(ls) == 0 {
		t.Fatal("no TCP listener at all: the check sees nothing")
	}
	for _, a := range ls {
		host, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("listening on %s, not loopback", a)
		}
	}
	t.Logf("TCP listeners: %v", ls)
}

// TestHostOnlyNoLeak: with COLUGO_DISCOVERY=local, whatever registered
// peers announce and their $describe says (a router or publisher on
// another host, a file-system Unix socket), the node sends no packet to a
// non-loopback address, connects to no such socket, and listens on
// loopback only. The refusals are counted, and the peers whose own
// addresses are fine are still used.
func TestHostOnlyNoLeak(t *testing.T) {
	netns.Run(t, func(t *testing.T) {
		hosts := netns.NewHosts(t, 1)
		netns.IP(t, "addr", "add", "10.77.0.254/24", "dev", "br0") // so that 10.77.0.1 is reachable from here
		other := hosts[0].IP
		// TCP and UDP only: the kernel's own ICMP (IPv6 neighbour and
		// multicast listener chatter, port unreachable) is not the node's.
		capture := netns.StartCapture(t, "any", "(tcp or udp) and not (net 127.0.0.0/8 or host ::1)")
		t.Setenv(colugo.EnvDiscovery, "local")

		dir := t.TempDir()
		sock, sockPub := filepath.Join(t.TempDir(), "router.sock"), filepath.Join(t.TempDir(), "pub.sock")
		dialled := unixTrap(t, sock)
		dialledPub := unixTrap(t, sockPub)
		topics := []colugo.TopicInfo{{Name: "t", Codec: "json", Type: "int"}}
		lan := func(port int) string { return net.JoinHostPort(other, fmt.Sprint(port)) }

		// A: a local router whose $describe names another host and a Unix socket path.
		aEp := startFake(t, "fakea", func(transport.Endpoint) colugo.PeerInfo {
			return colugo.PeerInfo{Name: "a", Router: lan(7001), Pub: lan(7002), LocalRouter: "unix:" + sock, LocalPub: "unix:" + sockPub, Topics: topics}
		})
		register(t, dir, discovery.Peer{ID: "fakea", Name: "a", Router: aEp.Router, Catalog: "c"})
		// D: its own abstract socket answers, but its local publisher is a path.
		dEp := startFake(t, "faked", func(ep transport.Endpoint) colugo.PeerInfo {
			return colugo.PeerInfo{Name: "d", Router: lan(7001), Pub: ep.Pub, LocalRouter: ep.LocalRouter, LocalPub: "unix:" + sockPub, Topics: topics}
		})
		register(t, dir, discovery.Peer{ID: "faked", Name: "d", Router: dEp.Router, Catalog: "c"})
		// B, C, E: registry entries a local user wrote, pointing elsewhere.
		register(t, dir, discovery.Peer{ID: "fakeb", Name: "b", Router: lan(7001)})
		register(t, dir, discovery.Peer{ID: "fakec", Name: "c", Router: "127.0.0.1:1", Pub: lan(7002)})
		register(t, dir, discovery.Peer{ID: "fakee", Name: "e", Router: "unix:" + sock})

		logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
		n, err := colugo.NewNode("victim", colugo.WithLogger(logger),
			colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if _, err := colugo.Subscribe[int](t.Context(), n, "t"); err != nil { // so that it would dial publishers
			t.Fatal(err)
		}

		// A.LocalRouter, D.LocalPub, B.Router, C.Pub and E.Router.
		const refusals = 5
		deadline := time.Now().Add(nsWait)
		for {
			names := map[string]bool{}
			for _, p := range n.Peers() {
				names[p.Name] = true
			}
			if n.Stats().AddressesRefused >= refusals && names["a"] && names["d"] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v: %d addresses refused (want %d), peers %v", nsWait, n.Stats().AddressesRefused, refusals, names)
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
		loopbackOnly(t)

		// A control packet proves the capture sees what goes to the other host.
		c, err := net.Dial("udp4", lan(9))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("control"))
		_ = c.Close()
		const control = ".9: UDP"
		if !capture.WaitFor(control, nsWait) {
			t.Fatal("the control packet was not captured: the capture proves nothing")
		}
		for _, l := range capture.Stop() {
			if l != "" && !strings.Contains(l, control) {
				t.Errorf("packet out of the namespace's interfaces: %s", l)
			}
		}
		if d, dp := dialled.Load(), dialledPub.Load(); d != 0 || dp != 0 {
			t.Errorf("connections to the Unix socket paths: router %d, pub %d", d, dp)
		}
		if names := peerNames(n); strings.Contains(names, "b") || strings.Contains(names, "c") || strings.Contains(names, "e") {
			t.Errorf("peers with refused addresses are listed: %s", names)
		}
	})
}

func peerNames(n *colugo.Node) string {
	var s []string
	for _, p := range n.Peers() {
		s = append(s, p.Name)
	}
	return strings.Join(s, ",")
}

// TestDefaultNotHostOnly pins what the documentation says of a node with
// no options and COLUGO_DISCOVERY unset: the transport listens on every
// interface and mDNS announces the node on the network. It runs only in a
// namespace, where the network is a veth to a simulated host.
func TestDefaultNotHostOnly(t *testing.T) {
	netns.Run(t, func(t *testing.T) {
		netns.NewHosts(t, 1)
		netns.IP(t, "addr", "add", "10.77.0.254/24", "dev", "br0")
		capture := netns.StartCapture(t, "br0", "udp port 5353")
		t.Setenv(colugo.EnvDiscovery, "")
		if err := os.Unsetenv(colugo.EnvDiscovery); err != nil { // t.Setenv restores it
			t.Fatal(err)
		}
		t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // the default registry, private to the test

		n, err := colugo.NewNode("default")
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		_, port, _ := net.SplitHostPort(n.Endpoint().Router)
		found := false
		for _, a := range netns.TCPListeners(t) {
			host, p, _ := net.SplitHostPort(a)
			if p == port {
				found = true
				if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
					t.Errorf("router listens on %s, want every interface", a)
				}
			}
		}
		if !found {
			t.Fatalf("no listener on the router's port %s", port)
		}
		if !capture.WaitFor("224.0.0.251.5353", nsWait) {
			t.Fatal("no mDNS packet on br0: the default does not announce on the network")
		}
	})
}

// TestHostOnlyListen: every host-only COLUGO_DISCOVERY value makes the
// default transport listen on loopback only, and a transport given by the
// program that listens beyond it is refused. (Before, only a bare local
// registry counted as host-only: "none" or "local,static:127.0.0.1:…"
// listened on every interface.) In a namespace, since the refused
// transport binds 0.0.0.0 for a moment.
func TestHostOnlyListen(t *testing.T) {
	netns.Run(t, func(t *testing.T) {
		t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
		for _, env := range []string{"none", "local", "static:127.0.0.1:1", "local,static:127.0.0.1:1,[::1]:1", "none,local"} {
			t.Run(env, func(t *testing.T) {
				t.Setenv(colugo.EnvDiscovery, env)
				n, err := colugo.NewNode("h")
				if err != nil {
					t.Fatal(err)
				}
				defer n.Close()
				ep := n.Endpoint()
				for _, a := range []string{ep.Router, ep.Pub} {
					if host, _, _ := net.SplitHostPort(a); host != "127.0.0.1" {
						t.Errorf("listens on %s", a)
					}
				}
				loopbackOnly(t)

				tr, err := zmq.New(zmq.WithHost("0.0.0.0"))
				if err != nil {
					t.Fatal(err)
				}
				if n2, err := colugo.NewNode("h2", colugo.WithTransport(tr)); !errors.Is(err, colugo.ErrInvalidOption) || !strings.Contains(err.Error(), "transport listens on") {
					if n2 != nil {
						_ = n2.Close()
					}
					t.Fatalf("NewNode with a transport on 0.0.0.0 = %v, want ErrInvalidOption naming it", err)
				}
			})
		}
	})
}

// TestDescribeUnixPathRefused runs in place (loopback only): in every
// scope, a peer's $describe that names a file-system Unix socket as its
// local router or publisher is refused and counted, the socket is never
// connected to, and the peer is still used over its TCP address.
func TestDescribeUnixPathRefused(t *testing.T) {
	for _, scope := range []string{"host-only", "network"} {
		t.Run(scope, func(t *testing.T) {
			sock, sockPub := filepath.Join(t.TempDir(), "r.sock"), filepath.Join(t.TempDir(), "p.sock")
			dialled, dialledPub := unixTrap(t, sock), unixTrap(t, sockPub)
			ep := startFake(t, "fakeunix", func(ep transport.Endpoint) colugo.PeerInfo {
				return colugo.PeerInfo{Name: "u", Router: ep.Router, Pub: ep.Pub, LocalRouter: "unix:" + sock, LocalPub: "unix:" + sockPub}
			})
			var opts []colugo.NodeOption
			if scope == "host-only" {
				t.Setenv(colugo.EnvDiscovery, "local")
				dir := t.TempDir()
				register(t, dir, discovery.Peer{ID: "fakeunix", Name: "u", Router: ep.Router, Catalog: "c"})
				opts = append(opts, colugo.WithDiscovery(local.New(local.WithDir(dir), local.WithPollInterval(10*time.Millisecond))))
			} else {
				// A program's own seed list is opaque, so network scope, on a
				// loopback transport: nothing here leaves loopback.
				t.Setenv(colugo.EnvDiscovery, "")
				tr, err := zmq.New(zmq.WithHost("127.0.0.1"))
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, colugo.WithDiscovery(discovery.Static(ep.Router)), colugo.WithTransport(tr))
			}
			n, err := colugo.NewNode("victim", opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			deadline := time.Now().Add(nsWait)
			for (n.Stats().AddressesRefused == 0 || !strings.Contains(peerNames(n), "u")) && dialled.Load()+dialledPub.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after %v: %d refused, peers %q", nsWait, n.Stats().AddressesRefused, peerNames(n))
				}
				time.Sleep(10 * time.Millisecond) // polling with a deadline
			}
			if d, dp := dialled.Load(), dialledPub.Load(); d != 0 || dp != 0 {
				t.Errorf("connections to the Unix socket paths: router %d, pub %d", d, dp)
			}
		})
	}
}
