package colugo_test

import (
	"context"
	"fmt"

	"github.com/colugo-go/colugo"
)

func ExampleSubscribePattern() {
	node := exampleNode("dashboard")
	defer node.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Every robot's pose, whichever robots there are, now or later.
	poses, err := colugo.SubscribePatternReceived[Reading](ctx, node, "robot/*/pose")
	if err != nil {
		panic(err)
	}
	for _, topic := range []string{"robot/r1/pose", "robot/r1/battery", "robot/r2/pose"} {
		pub, err := colugo.NewPublisher[Reading](node, topic)
		if err != nil {
			panic(err)
		}
		_ = pub.Publish(ctx, Reading{Sensor: topic, Value: 1})
	}

	for range 2 { // robot/r1/battery does not match
		r := <-poses
		fmt.Println(r.Topic, r.Value.Sensor)
	}
	// Output:
	// robot/r1/pose robot/r1/pose
	// robot/r2/pose robot/r2/pose
}

func ExampleParsePattern() {
	p, err := colugo.ParsePattern("robot/**")
	if err != nil {
		panic(err)
	}
	for _, topic := range []string{"robot", "robot/arm/joint/3", "robots/a"} {
		fmt.Println(topic, p.Match(topic))
	}
	_, err = colugo.ParsePattern("robot/pose*")
	fmt.Println(err != nil)
	// Output:
	// robot true
	// robot/arm/joint/3 true
	// robots/a false
	// true
}
