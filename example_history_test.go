package colugo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
)

// A late joiner is a node that starts after the publisher has published,
// so the history examples need two nodes that find each other: both on the
// in-process network, found through a host-local registry in a directory of
// their own (in a program, NewNode's default discovery does this).

// exampleSite returns a function that makes nodes that find each other and
// nobody else, and a cleanup that removes their registry; defer it before
// the nodes' Close, so that it runs after them.
func exampleSite() (newNode func(name string) *colugo.Node, cleanup func()) {
	dir, err := os.MkdirTemp("", "colugo-example-")
	if err != nil {
		panic(err)
	}
	newNode = func(name string) *colugo.Node {
		node, err := colugo.NewNode(name, colugo.WithTransport(exampleNet.New()), colugo.WithDiscovery(local.New(local.WithDir(dir))))
		if err != nil {
			panic(err)
		}
		return node
	}
	return newNode, func() { _ = os.RemoveAll(dir) }
}

// A latched topic: the robot publishes its description once, when it
// starts. A viewer that starts any time later gets it at once, marked as
// replayed from the publisher's history.
func ExampleWithLastValue() {
	newNode, cleanup := exampleSite()
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel() // also closes the subscription's channel

	robot := newNode("robot")
	defer robot.Close()
	description, err := colugo.NewPublisher[string](robot, "robot/description", colugo.WithHistory(1))
	if err != nil {
		panic(err)
	}
	_ = description.Publish(ctx, `<robot name="colugo-1"/>`) // nobody listens yet: kept, not lost

	viewer := newNode("viewer") // starts later
	defer viewer.Close()
	descriptions, err := colugo.SubscribeReceived[string](ctx, viewer, "robot/description", colugo.WithLastValue())
	if err != nil {
		panic(err)
	}
	d := <-descriptions
	fmt.Println(d.Value, "seq", d.Seq, "replayed", d.Replayed)
	// Output: <robot name="colugo-1"/> seq 1 replayed true
}

// A publisher that keeps the last 3 waypoints: a subscriber that asks for
// them gets them first, oldest first, with their original sequence
// numbers, then the live ones.
func ExampleWithHistory() {
	newNode, cleanup := exampleSite()
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	planner := newNode("planner")
	defer planner.Close()
	waypoints, err := colugo.NewPublisher[string](planner, "robot/waypoints", colugo.WithHistory(3))
	if err != nil {
		panic(err)
	}
	for _, w := range []string{"dock", "door", "hall", "lab", "bench"} {
		_ = waypoints.Publish(ctx, w)
	}

	robot := newNode("robot")
	defer robot.Close()
	got, err := colugo.SubscribeReceived[string](ctx, robot, "robot/waypoints", colugo.WithHistory(3))
	if err != nil {
		panic(err)
	}
	for range 3 {
		w := <-got
		fmt.Println(w.Seq, w.Value, "replayed", w.Replayed)
	}
	// Once the subscription has reached the publisher, what it publishes
	// is live.
	if err := waypoints.WaitSubscribers(ctx, 1); err != nil {
		panic(err)
	}
	_ = waypoints.Publish(ctx, "window")
	w := <-got
	fmt.Println(w.Seq, w.Value, "replayed", w.Replayed)
	// Output:
	// 3 hall replayed true
	// 4 lab replayed true
	// 5 bench replayed true
	// 6 window replayed false
}

// Latest reads a topic's current value without subscribing, as a tool or
// a script does: the newest value its publishers keep, or ErrNoValue once
// they have all answered that they keep none.
func ExampleLatest() {
	newNode, cleanup := exampleSite()
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // with no publisher at all, Latest waits for one until ctx ends
	defer cancel()

	robot := newNode("robot")
	defer robot.Close()
	mode, err := colugo.NewPublisher[string](robot, "robot/mode", colugo.WithHistory(1))
	if err != nil {
		panic(err)
	}
	_ = mode.Publish(ctx, "docking")
	_ = mode.Publish(ctx, "charging")
	// A publisher without history: it has nothing to give.
	if _, err := colugo.NewPublisher[string](robot, "robot/log"); err != nil {
		panic(err)
	}

	tool := newNode("tool")
	defer tool.Close()
	m, err := colugo.Latest[string](ctx, tool, "robot/mode")
	fmt.Println(m, err)
	_, err = colugo.Latest[string](ctx, tool, "robot/log")
	fmt.Println(errors.Is(err, colugo.ErrNoValue))
	// Output:
	// charging <nil>
	// true
}
