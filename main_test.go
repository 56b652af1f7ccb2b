package colugo_test

import (
	"context"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testkit"
)

func TestMain(m *testing.M) {
	// Safety net: a node that a test creates without naming its discovery
	// must not announce itself on this machine's real network.
	if os.Getenv(colugo.EnvDiscovery) == "" {
		os.Setenv(colugo.EnvDiscovery, "local")
	}
	goleak.VerifyTestMain(m,
		// Raw zmq4 PUB sockets, used only by the baseline benchmarks, leave
		// their writer goroutine running after Close (zmq4 v0.17.0).
		goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"),
	)
}

const wait = testkit.Wait

type Pose struct {
	X, Y float64
	Seq  int
}

// The service of most tests, shared with the integration tests.
type (
	AddReq  = testkit.AddReq
	AddResp = testkit.AddResp
)

var add = testkit.Add

// waitServers waits for want servers of service to be usable from node.
func waitServers(t *testing.T, node *colugo.Node, service string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := node.WaitServers(ctx, service, want); err != nil {
		t.Fatalf("waiting for %d servers of %q: %v", want, service, err)
	}
}

// nodePairs makes a server and a client node over each transport: inproc
// (colugotest) and zmq with a registry in a temporary directory.
var nodePairs = []struct {
	name string
	pair func(t *testing.T) (srv, cli *colugo.Node)
}{
	{"inproc", func(t *testing.T) (*colugo.Node, *colugo.Node) {
		net := colugotest.NewNetwork(t)
		return net.NewNode("srv"), net.NewNode("cli")
	}},
	{"zmq", func(t *testing.T) (*colugo.Node, *colugo.Node) {
		dir := t.TempDir()
		mk := func(name string) *colugo.Node {
			n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close() })
			return n
		}
		return mk("srv"), mk("cli")
	}},
}
