package colugo_test

import (
	"context"
	"fmt"
	"time"

	"github.com/colugo-go/colugo"
)

// A logger subscribes to every topic a robot has: one budget bounds what
// their queues hold together while the disk lags, whatever the number of
// topics.
func ExampleWithQueueBudget() {
	newNode, cleanup := exampleSite()
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	logger := newNode("logger")
	defer logger.Close()
	budget := colugo.NewQueueBudget(16 << 20) // 16 MiB for all of them
	var logs []<-chan colugo.Received[[]byte]
	for _, topic := range []string{"robot/pose", "robot/scan", "robot/log"} {
		ch, err := colugo.SubscribeReceived[[]byte](ctx, logger, topic, colugo.WithAnyCodec(),
			colugo.WithQueueBytes(8<<20), // one topic at most half of it
			colugo.WithQueueBudget(budget))
		if err != nil {
			panic(err)
		}
		logs = append(logs, ch)
	}

	robot := newNode("robot")
	defer robot.Close()
	pose, err := colugo.NewPublisher[string](robot, "robot/pose")
	if err != nil {
		panic(err)
	}
	if err := pose.WaitSubscribers(ctx, 1); err != nil {
		panic(err)
	}
	_ = pose.Publish(ctx, "x=1.5 y=2")
	m := <-logs[0]
	fmt.Println(m.Topic, m.Codec, string(m.Value), "budget", budget.Max()>>20, "MiB")
	// Output: robot/pose json "x=1.5 y=2" budget 16 MiB
}
