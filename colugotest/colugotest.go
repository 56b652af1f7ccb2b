package colugotest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/transport/inproc"
)

// Network is an in-process network of nodes: they find each other at once
// and exchange messages without encoding headers or touching sockets, with
// the same semantics as the zmq transport (checked by one conformance
// suite). Safe for concurrent use.
type Network struct {
	tb  testing.TB
	net *inproc.Network
	reg *registry
}

// NewNetwork returns an empty network whose nodes are closed when tb's test
// ends (tb.Cleanup).
func NewNetwork(tb testing.TB) *Network {
	tb.Helper()
	return &Network{tb: tb, net: inproc.NewNetwork(), reg: newRegistry()}
}

// NewNode creates a node on the network. Its warnings and errors are
// logged through tb.Log (pass colugo.WithLogger to change that). It fails
// the test if the node cannot be created, and closes it at cleanup.
func (n *Network) NewNode(name string, opts ...colugo.NodeOption) *colugo.Node {
	n.tb.Helper()
	base := []colugo.NodeOption{
		colugo.WithTransport(n.net.New()),
		colugo.WithDiscovery(n.reg.newDiscovery()),
		colugo.WithLogger(slog.New(slog.NewTextHandler(tbWriter{n.tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	node, err := colugo.NewNode(name, append(base, opts...)...)
	if err != nil {
		n.tb.Fatalf("colugotest: NewNode(%q): %v", name, err)
	}
	n.tb.Cleanup(func() { _ = node.Close() })
	return node
}

var (
	defaultsMu sync.Mutex
	defaults   = map[testing.TB]*Network{}
)

// NewNode creates a node on tb's default network: nodes made by NewNode with
// the same tb see each other.
func NewNode(tb testing.TB, name string, opts ...colugo.NodeOption) *colugo.Node {
	tb.Helper()
	defaultsMu.Lock()
	n := defaults[tb]
	if n == nil {
		n = NewNetwork(tb)
		defaults[tb] = n
		tb.Cleanup(func() {
			defaultsMu.Lock()
			delete(defaults, tb)
			defaultsMu.Unlock()
		})
	}
	defaultsMu.Unlock()
	return n.NewNode(name, opts...)
}

// Next returns the next value from ch, failing the test if none arrives
// within timeout or if ch is closed.
func Next[T any](tb testing.TB, ch <-chan T, timeout time.Duration) T {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			tb.Fatalf("colugotest: channel closed while waiting for a %T", v)
		}
		return v
	case <-t.C:
		var zero T
		tb.Fatalf("colugotest: no %T within %v", zero, timeout)
		return zero
	}
}

// tbWriter turns log lines into tb.Log calls.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
