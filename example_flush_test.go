package colugo_test

import (
	"context"
	"fmt"
	"time"

	"github.com/colugo-go/colugo"
)

// A relay forwards messages from a store and acks each batch to the store
// only once Flush says it has left for the reliable subscribers: a crash
// of the relay then loses nothing it acked (the store sends the rest
// again).
func ExamplePublisher_Flush() {
	newNode, cleanup := exampleSite()
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	viewer := newNode("viewer")
	defer viewer.Close()
	got, err := colugo.Subscribe[string](ctx, viewer, "log", colugo.WithDropPolicy(colugo.Block(time.Second))) // reliable
	if err != nil {
		panic(err)
	}
	relay := newNode("relay")
	defer relay.Close()
	pub, err := colugo.NewPublisher[string](relay, "log")
	if err != nil {
		panic(err)
	}
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		panic(err)
	}
	stored := []string{"boot", "arm ready", "mission start"} // from the store
	for _, line := range stored {
		if err := pub.Publish(ctx, line); err != nil {
			panic(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		panic(err) // not acked: the store sends them again
	}
	fmt.Println("acked", len(stored))
	for range stored {
		fmt.Println(<-got)
	}
	// Output:
	// acked 3
	// boot
	// arm ready
	// mission start
}
