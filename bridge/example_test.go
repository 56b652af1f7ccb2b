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
	// An embedded NATS server on loopback, for the example; a fleet's
	// bridges dial their NATS cluster or leaf node instead.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{NoAdvertise: true}, LeafNode: server.LeafNodeOpts{NoAdvertise: true}})
	if err != nil {
		panic(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("nats-server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var defers []func() // run last first, as defer would
	defer func() {
		for i := len(defers) - 1; i >= 0; i-- {
			defers[i]()
		}
	}()

	// A site's nodes: a site is whatever its discovery reaches.
	site := func(name string) func(string) *colugo.Node {
		dir, err := os.MkdirTemp("", "colugo-"+name)
		if err != nil {
			panic(err)
		}
		defer func() { defers = append(defers, func() { _ = os.RemoveAll(dir) }) }()
		return func(node string) *colugo.Node {
			n, err := colugo.NewNode(node, colugo.WithDiscovery(local.New(local.WithDir(dir))))
			if err != nil {
				panic(err)
			}
			return n
		}
	}
	siteA, siteB := site("a"), site("b")
	robot, viewer := siteA("robot"), siteB("viewer")
	defer robot.Close()
	defer viewer.Close()

	pose := bridge.Lists{Topics: []bridge.Topic{{Name: "robot/pose"}}}
	run := func(node *colugo.Node, cfg bridge.Config) {
		cfg.NATS = bridge.NATS{URLs: []string{ns.ClientURL()}}
		b, err := bridge.New(node, cfg)
		if err != nil {
			panic(err)
		}
		ran := make(chan struct{})
		go func() { _ = b.Run(ctx); close(ran) }()
		defers = append(defers, func() { _ = b.Close(); <-ran; _ = node.Close() })
	}
	run(siteA("bridge"), bridge.Config{Site: "a", Export: pose}) // nothing crosses unless listed
	run(siteB("bridge"), bridge.Config{Site: "b", Import: pose})

	poses, err := colugo.Subscribe[string](ctx, viewer, "robot/pose")
	if err != nil {
		panic(err)
	}
	pub, err := colugo.NewPublisher[string](robot, "robot/pose")
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
			cancel()
			return
		case <-tick.C:
		case <-ctx.Done():
			fmt.Println("nothing crossed:", ctx.Err())
			return
		}
	}
	// Output: site b got x=1.5 y=2
}
