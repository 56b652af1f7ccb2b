package colugo_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/transport/inproc"
)

// The examples run on the in-process transport so that their output is
// checked without sockets; with the defaults (NewNode("camera")) the same
// code runs over TCP on every interface with host-local and mDNS discovery
// (COLUGO_DISCOVERY=local: on 127.0.0.1 with the host-local registry only).
var exampleNet = inproc.NewNetwork()

// exampleNode returns a node alone on the in-process network (no peers to
// discover: the examples' output must not depend on other processes).
func exampleNode(name string) *colugo.Node {
	node, err := colugo.NewNode(name, colugo.WithTransport(exampleNet.New()), colugo.WithDiscovery(discovery.Static()))
	if err != nil {
		panic(err)
	}
	return node
}

type Reading struct {
	Sensor string
	Value  float64
}

func ExampleSubscribe() {
	node := exampleNode("thermometer") // colugo.NewNode("thermometer") in a program
	defer node.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	readings, err := colugo.Subscribe[Reading](ctx, node, "lab/temperature")
	if err != nil {
		panic(err)
	}
	pub, err := colugo.NewPublisher[Reading](node, "lab/temperature")
	if err != nil {
		panic(err)
	}
	_ = pub.Publish(ctx, Reading{Sensor: "bench-1", Value: 21.5})

	r := <-readings
	fmt.Printf("%s: %.1f °C\n", r.Sensor, r.Value)
	// Output: bench-1: 21.5 °C
}

func ExampleRequest() {
	node := exampleNode("calculator")
	defer node.Close()
	_, err := colugo.Serve(node, "math/add", func(ctx context.Context, r AddReq) (AddResp, error) {
		return AddResp{Sum: r.A + r.B}, nil
	})
	if err != nil {
		panic(err)
	}

	// Any node can call it: this one, or any other that discovery finds. The
	// request waits (within ctx) until a server is known.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := colugo.Request[AddReq, AddResp](ctx, node, "math/add", AddReq{A: 2, B: 3})
	if err != nil {
		panic(err)
	}
	fmt.Println("2 + 3 =", resp.Sum)
	// Output: 2 + 3 = 5
}

func ExampleNode_WaitServers() {
	node := exampleNode("console")
	defer node.Close()
	served := make(chan *colugo.Server, 1)
	go func() {
		// A server that comes up in its own time: here on this node, in a
		// program usually on other nodes, found by discovery. WaitServers
		// counts both.
		srv, err := colugo.Serve(node, "lab/ping", func(context.Context, string) (string, error) { return "bench-1 is up", nil })
		if err != nil {
			panic(err)
		}
		served <- srv
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Without the wait, WithFailFast could find nobody yet, and RequestAll
	// would ask only the servers known so far.
	if err := node.WaitServers(ctx, "lab/ping", 1); err != nil {
		panic(err)
	}
	replies, err := colugo.RequestAll[string, string](ctx, node, "lab/ping", "ping", colugo.WithFailFast())
	if err != nil {
		panic(err)
	}
	for _, r := range replies {
		fmt.Println(r.Value, r.Err)
	}
	(<-served).Close()
	// Output: bench-1 is up <nil>
}

func ExampleNode_Close() {
	node := exampleNode("sensor")
	events, err := colugo.Subscribe[string](context.Background(), node, "events")
	if err != nil {
		panic(err)
	}
	pub, _ := colugo.NewPublisher[string](node, "events")
	_ = pub.Publish(context.Background(), "started")
	fmt.Println("event:", <-events)

	_ = node.Close() // closes every subscription channel and waits for the node's goroutines
	_, open := <-events
	fmt.Println("subscription open:", open)
	fmt.Println(pub.Publish(context.Background(), "too late"))
	// Output:
	// event: started
	// subscription open: false
	// colugo: closed
}

func ExampleServe() {
	node := exampleNode("greeter")
	defer node.Close()
	srv, err := colugo.Serve(node, "greet", func(ctx context.Context, name string) (string, error) {
		if name == "" {
			return "", colugo.Errorf(colugo.CodeInvalidArgument, "no name")
		}
		return "hello, " + name, nil
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	ctx := context.Background()
	msg, _ := colugo.Request[string, string](ctx, node, "greet", "ada")
	fmt.Println(msg)
	_, err = colugo.Request[string, string](ctx, node, "greet", "")
	fmt.Println(colugo.CodeOf(err), err)
	// Output:
	// hello, ada
	// invalid_argument colugo: greet: remote invalid_argument: no name
}

func ExampleRequestAll() {
	node := exampleNode("fleet")
	defer node.Close()
	_, _ = colugo.Serve(node, "status", func(context.Context, struct{}) (string, error) { return "ok", nil })

	replies, err := colugo.RequestAll[struct{}, string](context.Background(), node, "status", struct{}{})
	if err != nil {
		panic(err)
	}
	for _, r := range replies {
		fmt.Println(r.From.Name, r.Value, r.Err)
	}
	// Output: fleet ok <nil>
}

func ExampleNewPublisher() {
	node := exampleNode("camera")
	defer node.Close()
	// Raw bytes: no encoding; a []byte is sent as it is.
	frames, err := colugo.NewPublisher[[]byte](node, "camera/jpeg", colugo.WithCodec(codec.Raw{}))
	if err != nil {
		panic(err)
	}
	fmt.Println(frames.Topic(), frames.Publish(context.Background(), []byte{0xff, 0xd8}))
	// Output: camera/jpeg <nil>
}

// A stream that must arrive whole: the subscriber asks for reliable
// delivery with the Block policy, the publisher waits for it (at most a
// second per Publish) instead of dropping, so a slow reader slows the
// publisher down to its pace.
func ExampleWithBackPressure() {
	node := exampleNode("logger")
	defer node.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	lines, err := colugo.Subscribe[string](ctx, node, "log/lines",
		colugo.WithBuffer(1), colugo.WithQueueBytes(1<<10), colugo.WithDropPolicy(colugo.Block(time.Second)))
	if err != nil {
		panic(err)
	}
	pub, err := colugo.NewPublisher[string](node, "log/lines", colugo.WithBackPressure(time.Second))
	if err != nil {
		panic(err)
	}
	done := make(chan int)
	go func() {
		n := 0
		for range lines {
			if n++; n == 1000 {
				break
			}
		}
		done <- n
	}()
	for i := range 1000 {
		_ = pub.Publish(ctx, fmt.Sprintf("line %d", i)) // waits while the reader's queue is full
	}
	fmt.Println("received", <-done, "dropped", node.Stats().Topics["log/lines"].Dropped)
	// Output: received 1000 dropped 0
}

// Add is the definition that a calculator's servers and clients share,
// typically from a package of their own.
var Add = colugo.NewService[AddReq, AddResp]("math/add")

func ExampleService() {
	node := exampleNode("calculator")
	defer node.Close()
	if _, err := Add.Serve(node, func(ctx context.Context, r AddReq) (AddResp, error) {
		return AddResp{Sum: r.A + r.B}, nil
	}); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := Add.Request(ctx, node, AddReq{A: 2, B: 3}) // the types come from Add
	if err != nil {
		panic(err)
	}
	fmt.Println("2 + 3 =", resp.Sum)
	// Output: 2 + 3 = 5
}

func ExampleTopic() {
	node := exampleNode("thermometer")
	defer node.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	temperature := colugo.NewTopic[Reading]("lab/temperature")
	readings, err := temperature.Subscribe(ctx, node)
	if err != nil {
		panic(err)
	}
	pub, err := temperature.Publisher(node)
	if err != nil {
		panic(err)
	}
	_ = pub.Publish(ctx, Reading{Sensor: "bench-2", Value: 19.0})
	r := <-readings
	fmt.Printf("%s: %.1f °C\n", r.Sensor, r.Value)
	// Output: bench-2: 19.0 °C
}

func ExampleWithMetadata() {
	node := exampleNode("gateway")
	defer node.Close()
	_, err := colugo.Serve(node, "user/greet", func(ctx context.Context, name string) (string, error) {
		return "hello " + name + " from tenant " + colugo.IncomingMetadata(ctx)["tenant"], nil
	})
	if err != nil {
		panic(err)
	}
	ctx := colugo.WithMetadata(context.Background(), colugo.Metadata{"tenant": "acme"})
	reply, err := colugo.Request[string, string](ctx, node, "user/greet", "ada")
	if err != nil {
		panic(err)
	}
	fmt.Println(reply)
	// Output: hello ada from tenant acme
}

func ExampleNode_WaitDiscovered() {
	// Two nodes on this host, over TCP on loopback, in a registry of their
	// own (a program would use the defaults: NewNode("bench-1")).
	dir, err := os.MkdirTemp("", "colugo-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	onHost := func(name string) *colugo.Node {
		node, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))))
		if err != nil {
			panic(err)
		}
		return node
	}
	bench := onHost("bench-1")
	defer bench.Close()

	// A console that starts when the lab is up, to list the network or act
	// on all of it, first waits for its look at the network to be over.
	console := onHost("console")
	defer console.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := console.WaitDiscovered(ctx); err != nil {
		panic(err)
	}
	for _, p := range console.Peers() {
		fmt.Println(p.Name)
	}
	// Output: bench-1
}
