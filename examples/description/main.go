// Command description shows a latched topic: a robot publishes its
// description once, when it starts, and keeps it (WithHistory(1)); a
// viewer or a tool that starts any time later gets it at once.
//
//	go run ./examples/description pub      # publishes robot/description once, runs until interrupted
//	go run ./examples/description sub      # a late subscriber: WithLastValue, prints the description, exits
//	go run ./examples/description latest   # Latest: reads the current description without subscribing
//
// Start pub first, then sub or latest whenever you like: without
// WithHistory on the publisher and WithLastValue (or Latest) on the other
// side, a late subscriber would wait for the next publish, which never
// comes. A subscriber started first gets it too, live.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/examples"
)

const topic = "robot/description"

// Description is what a robot says about itself once: its name, its frames
// and its URDF model.
type Description struct {
	Robot  string   `json:"robot"`
	Frames []string `json:"frames"`
	URDF   string   `json:"urdf"`
}

func (d Description) String() string {
	return fmt.Sprintf("robot %s, frames %v, %d bytes of URDF", d.Robot, d.Frames, len(d.URDF))
}

const usage = "usage: description pub|sub|latest [-timeout D]"

func main() {
	// The role comes first; its flags follow it: description sub -timeout 5s.
	fs := flag.NewFlagSet("description", flag.ExitOnError)
	timeout := fs.Duration("timeout", 10*time.Second, "sub, latest: give up after this long")
	lan := fs.Bool("lan", false, "also find peers on the LAN with mDNS")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	role := os.Args[1]
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	node, err := colugo.NewNode("description-"+role, examples.Discovery(*lan), examples.Errors())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	switch role {
	case "pub":
		err = publish(ctx, node)
	case "sub":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		err = subscribe(ctx, node)
	case "latest":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		err = latest(ctx, node)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		node.Close()
		log.Fatal(err)
	}
}

// publish publishes the description once and keeps the node up, so that
// the publisher, and with it the history, lives on.
func publish(ctx context.Context, node *colugo.Node) error {
	pub, err := colugo.NewPublisher[Description](node, topic, colugo.WithHistory(1))
	if err != nil {
		return err
	}
	d := Description{
		Robot:  "colugo-1",
		Frames: []string{"base_link", "laser", "camera"},
		URDF:   `<robot name="colugo-1"><link name="base_link"/><link name="laser"/><link name="camera"/></robot>`,
	}
	if err := pub.Publish(ctx, d); err != nil {
		return err
	}
	fmt.Println("published", d)
	<-ctx.Done() // interrupted
	return nil
}

// subscribe is a late joiner: it asks every publisher for its last value,
// which arrives before anything live.
func subscribe(ctx context.Context, node *colugo.Node) error {
	begin := time.Now()
	descriptions, err := colugo.SubscribeReceived[Description](ctx, node, topic, colugo.WithLastValue())
	if err != nil {
		return err
	}
	d, ok := <-descriptions // closed when ctx ends
	if !ok {
		return fmt.Errorf("no %s within the timeout: %w", topic, ctx.Err())
	}
	fmt.Printf("received %v (seq %d, replayed %v) after %v\n", d.Value, d.Seq, d.Replayed, time.Since(begin).Round(time.Millisecond))
	return nil
}

// latest reads the description without subscribing.
func latest(ctx context.Context, node *colugo.Node) error {
	begin := time.Now()
	d, err := colugo.Latest[Description](ctx, node, topic)
	switch {
	case errors.Is(err, colugo.ErrNoValue):
		return fmt.Errorf("%s: its publishers keep no description", topic)
	case err != nil:
		return err
	}
	fmt.Printf("latest %v after %v\n", d, time.Since(begin).Round(time.Millisecond))
	return nil
}
