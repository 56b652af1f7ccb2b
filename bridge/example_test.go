package bridge_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/discovery/local"
)

// Two sites, each its own colugo network (here two host-local registries),
// joined through a NATS server: site a's bridge exports robot/pose, site
// b's imports it, and a viewer on site b subscribes as to any topic.
func Example() {
	natsURL, siteA, siteB, done := exampleSites(exampleNATS)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	pose := bridge.Lists{Topics: []bridge.Topic{{Name: "robot/pose"}}}
	defer exampleBridge(siteA("bridge"), bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{natsURL}}, Export: pose})()
	defer exampleBridge(siteB("bridge"), bridge.Config{Site: "b", NATS: bridge.NATS{URLs: []string{natsURL}}, Import: pose})()

	poses, err := colugo.Subscribe[string](ctx, siteB("viewer"), "robot/pose")
	if err != nil {
		panic(err)
	}
	pub, err := colugo.NewPublisher[string](siteA("robot"), "robot/pose")
	if err != nil {
		panic(err)
	}
	// The first messages go before the bridges' subscriptions are up, as
	// on any pub/sub path being set up: publish until one arrives.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_ = pub.Publish(ctx, "x=1.5 y=2")
		select {
		case p := <-poses:
			fmt.Println("site b got", p)
			return
		case <-tick.C:
		case <-ctx.Done():
			fmt.Println("nothing crossed:", ctx.Err())
			return
		}
	}
	// Output: site b got x=1.5 y=2
}

// A service of site a, called from site b: site b's bridge serves it on
// site b (it answers $describe), forwarding each request over NATS with
// the caller's remaining deadline; a remote error keeps its code.
func Example_services() {
	natsURL, siteA, siteB, done := exampleSites(exampleNATS)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	planner := siteA("planner")
	if _, err := colugo.Serve(planner, "plan/route", func(_ context.Context, to string) (string, error) {
		if to == "" {
			return "", colugo.Errorf(colugo.CodeInvalidArgument, "no destination")
		}
		return "dock -> hall -> " + to, nil
	}); err != nil {
		panic(err)
	}
	route := bridge.Lists{Services: []bridge.Service{{Name: "plan/route"}}}
	defer exampleBridge(siteA("bridge"), bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{natsURL}}, Export: route})()
	defer exampleBridge(siteB("bridge"), bridge.Config{Site: "b", NATS: bridge.NATS{URLs: []string{natsURL}}, Import: route})()

	robot := siteB("robot")
	if err := robot.WaitServers(ctx, "plan/route", 1); err != nil { // site b's bridge, once it has asked NATS
		panic(err)
	}
	r, err := colugo.Request[string, string](ctx, robot, "plan/route", "lab")
	fmt.Println(r, err)
	_, err = colugo.Request[string, string](ctx, robot, "plan/route", "")
	fmt.Println(colugo.CodeOf(err))
	// Output:
	// dock -> hall -> lab <nil>
	// invalid_argument
}

// Store-and-forward: site a's robot logs while site b is away (its bridge
// not even started); when site b's bridge starts, its durable consumer
// delivers the backlog, in order, to the subscribers already there.
func Example_jetStream() {
	natsURL, siteA, siteB, done := exampleSites(exampleNATSJetStream)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ba, stopA := exampleBridgeRunning(siteA("bridge"), bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{natsURL}},
		Export: bridge.Lists{Topics: []bridge.Topic{{Name: "robot/log", JetStream: &bridge.JetStream{MaxMsgs: 10000, MaxAge: 24 * time.Hour}}}}})
	defer stopA()
	log, err := colugo.NewPublisher[string](siteA("robot"), "robot/log")
	if err != nil {
		panic(err)
	}
	if err := log.WaitSubscribers(ctx, 1); err != nil { // site a's bridge
		panic(err)
	}
	for _, line := range []string{"boot", "arm ready", "door open"} {
		_ = log.Publish(ctx, line)
	}
	for st := ba.Stats(); st.Export.Messages < 3 || st.Spooled > 0; st = ba.Stats() { // stored, acked
		if ctx.Err() != nil {
			panic("not stored")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Site b comes back: a viewer, then its bridge.
	lines, err := colugo.Subscribe[string](ctx, siteB("viewer"), "robot/log")
	if err != nil {
		panic(err)
	}
	defer exampleBridge(siteB("bridge"), bridge.Config{Site: "b", NATS: bridge.NATS{URLs: []string{natsURL}},
		Import: bridge.Lists{Topics: []bridge.Topic{{Name: "robot/log", JetStream: &bridge.JetStream{}}}}})()
	for range 3 {
		select {
		case l := <-lines:
			fmt.Println(l)
		case <-ctx.Done():
			fmt.Println("backlog incomplete:", ctx.Err())
			return
		}
	}
	// Output:
	// boot
	// arm ready
	// door open
}

// exampleSites starts a NATS server with start and two sites, each on a
// host-local registry of its own, and returns the server's URL, makers of
// each site's nodes and what stops all of them.
func exampleSites(start func() (string, func())) (natsURL string, siteA, siteB func(string) *colugo.Node, done func()) {
	natsURL, stopNATS := start()
	siteA, closeA := exampleSite()
	siteB, closeB := exampleSite()
	return natsURL, siteA, siteB, func() { closeB(); closeA(); stopNATS() }
}

// exampleNATS starts an embedded NATS server on loopback, for the
// examples; a fleet's bridges dial their NATS cluster or leaf node.
func exampleNATS() (url string, stop func()) { return exampleNATSWith(&server.Options{}) }

// exampleNATSJetStream is exampleNATS with JetStream, its store in a
// temporary directory.
func exampleNATSJetStream() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "colugo-jetstream")
	if err != nil {
		panic(err)
	}
	url, stopServer := exampleNATSWith(&server.Options{JetStream: true, StoreDir: dir})
	return url, func() { stopServer(); _ = os.RemoveAll(dir) }
}

func exampleNATSWith(o *server.Options) (url string, stop func()) {
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	o.Cluster.NoAdvertise, o.LeafNode.NoAdvertise = true, true
	ns, err := server.NewServer(o)
	if err != nil {
		panic(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("nats-server did not start")
	}
	return ns.ClientURL(), func() { ns.Shutdown(); ns.WaitForShutdown() }
}

// exampleSite returns a maker of nodes of one site (a site is whatever its
// discovery reaches: here a host-local registry of its own) and what
// closes them.
func exampleSite() (newNode func(name string) *colugo.Node, closeAll func()) {
	dir, err := os.MkdirTemp("", "colugo-site")
	if err != nil {
		panic(err)
	}
	var nodes []*colugo.Node
	return func(name string) *colugo.Node {
			n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))))
			if err != nil {
				panic(err)
			}
			nodes = append(nodes, n)
			return n
		}, func() {
			for _, n := range nodes {
				_ = n.Close()
			}
			_ = os.RemoveAll(dir)
		}
}

// exampleBridge runs a bridge with cfg on node until the returned stop.
func exampleBridge(node *colugo.Node, cfg bridge.Config) (stop func()) {
	_, stop = exampleBridgeRunning(node, cfg)
	return stop
}

func exampleBridgeRunning(node *colugo.Node, cfg bridge.Config) (*bridge.Bridge, func()) {
	b, err := bridge.New(node, cfg)
	if err != nil {
		panic(err)
	}
	ran := make(chan struct{})
	go func() { _ = b.Run(context.Background()); close(ran) }()
	return b, func() { _ = b.Close(); <-ran }
}
