package bridge_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

func TestMain(m *testing.M) {
	// Safety net: nothing here may reach beyond the host.
	if os.Getenv(colugo.EnvDiscovery) == "" {
		os.Setenv(colugo.EnvDiscovery, "local")
	}
	goleak.VerifyTestMain(m)
}

const wait = 10 * time.Second

// natsServer starts an embedded NATS server on 127.0.0.1 (port 0: any),
// advertising nothing, stopped when the test ends.
func natsServer(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return startNATS(t, &server.Options{Port: port})
}

// startNATS starts an embedded NATS server with o on 127.0.0.1, logging
// nothing and advertising nothing, stopped when the test ends.
func startNATS(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.NoLog, o.NoSigs, o.DisableShortFirstPing = "127.0.0.1", true, true, true
	o.Cluster.NoAdvertise, o.LeafNode.NoAdvertise = true, true
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(wait) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// freePort returns a loopback port free a moment ago, for a server that
// must come back on the same one.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsClient is a raw NATS client of the test, on s only.
func natsClient(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.IgnoreDiscoveredServers(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// runBridge makes a bridge node on net (with opts), runs a bridge with cfg
// on it and stops both when the test ends.
func runBridge(t *testing.T, net *colugotest.Network, cfg bridge.Config, opts ...colugo.NodeOption) (*bridge.Bridge, *colugo.Node) {
	t.Helper()
	node := net.NewNode("bridge-"+cfg.Site, opts...)
	if cfg.NATS.ReconnectWait == 0 {
		cfg.NATS.ReconnectWait = 20 * time.Millisecond
	}
	return runBridgeOn(t, node, cfg), node
}

// runBridgeOn runs a bridge with cfg on node until the test ends.
func runBridgeOn(tb testing.TB, node *colugo.Node, cfg bridge.Config) *bridge.Bridge {
	tb.Helper()
	b, err := bridge.New(node, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Run(context.Background()); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	tb.Cleanup(func() {
		b.Close()
		wg.Wait()
	})
	return b
}

// jsLogSites are two sites on a JetStream server: site a's bridge exports
// topic log through a stream, site b's imports it.
type jsLogSites struct {
	srv    *server.Server
	a, b   *colugotest.Network
	ba, bb *bridge.Bridge
	nb     *colugo.Node // bb's
	cb     bridge.Config
}

// newJSLogSites starts jsLogSites with a stream of maxMsgs.
func newJSLogSites(t *testing.T, maxMsgs int64) jsLogSites {
	s := jsLogSites{srv: natsServerJS(t), a: colugotest.NewNetwork(t), b: colugotest.NewNetwork(t)}
	ca := cfgFor(s.srv, "a")
	ca.Export.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{MaxMsgs: maxMsgs}}}
	s.ba, _ = runBridge(t, s.a, ca)
	s.cb = cfgFor(s.srv, "b")
	s.cb.Import.Topics = []bridge.Topic{{Name: "log", JetStream: &bridge.JetStream{}}}
	s.bb, s.nb = runBridge(t, s.b, s.cb)
	return s
}

// cfgFor is a config for site on s.
func cfgFor(s *server.Server, site string) bridge.Config {
	return bridge.Config{Site: site, NATS: bridge.NATS{URLs: []string{s.ClientURL()}}}
}

// until calls publish every 20ms or so until got reports success, for links whose subscriptions are being set up (a message
// published before they are lost, at most once).
func until(t *testing.T, what string, publish func(), got func(time.Duration) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		publish()
		if got(20 * time.Millisecond) {
			return
		}
	}
	t.Fatalf("timed out: %s", what)
}

// recv returns a func for until that waits d for a value from ch
// satisfying ok.
func recv[T any](ch <-chan T, ok func(T) bool) func(time.Duration) bool {
	return func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case v, open := <-ch:
				if !open {
					return false
				}
				if ok(v) {
					return true
				}
			case <-t.C:
				return false
			}
		}
	}
}

// natsCluster starts n embedded NATS servers on 127.0.0.1 routed to one
// another (cluster ports on loopback, nothing advertised), stopped when the
// test ends, and waits until every route is up.
func natsCluster(t *testing.T, n int) []*server.Server { return natsClusterOf(t, n, false) }

// natsClusterJS is natsCluster with JetStream on every server (each its
// own store): streams of up to n replicas.
func natsClusterJS(t *testing.T, n int) []*server.Server { return natsClusterOf(t, n, true) }

func natsClusterOf(t *testing.T, n int, js bool) []*server.Server {
	t.Helper()
	// Cluster ports chosen first, so that each server routes to every
	// other from its start: a JetStream server is ready only once the
	// cluster has elected a meta leader, which needs the others.
	ports := make([]int, n)
	var held []net.Listener
	for i := range ports {
		// Each listener held until all are chosen: one closed at once
		// could be chosen again.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range held {
		_ = l.Close()
	}
	var servers []*server.Server
	for i := range n {
		o := &server.Options{
			ServerName: "s" + strconv.Itoa(i),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
			Cluster:               server.ClusterOpts{Name: "bridge-test", Host: "127.0.0.1", Port: ports[i], NoAdvertise: true},
			LeafNode:              server.LeafNodeOpts{NoAdvertise: true},
			DisableShortFirstPing: true,
		}
		if js {
			o.JetStream, o.StoreDir = true, t.TempDir()
		}
		for k, p := range ports {
			if k != i {
				o.Routes = append(o.Routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)})
			}
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers = append(servers, s)
	}
	for _, s := range servers {
		go s.Start()
	}
	for i, s := range servers {
		if !s.ReadyForConnections(wait) {
			t.Fatalf("nats-server did not start: %d client %v cluster %v ports %v running %v", i, s.Addr(), s.ClusterAddr(), ports, s.Running())
		}
	}
	testwait.Until(t, "cluster routes", func() bool {
		for _, s := range servers {
			if s.NumRoutes() < n-1 {
				return false
			}
		}
		return true
	})
	if js {
		// Until the cluster has a meta leader: before, stream requests
		// time out (5 s each, the bridge's first try).
		testwait.Until(t, "JetStream's meta leader", func() bool {
			for _, s := range servers {
				if s.JetStreamIsLeader() {
					return true
				}
			}
			return false
		})
	}
	return servers
}
