package record_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/record"
)

// Record a topic of a running network into an MCAP file, then look at
// what it holds. (Two nodes on a host-local registry in a temporary
// directory, so the example finds only itself.)
func Example() {
	dir, err := os.MkdirTemp("", "record-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	disc := func() colugo.NodeOption { return colugo.WithDiscovery(local.New(local.WithDir(dir))) }

	robot, err := colugo.NewNode("robot", disc())
	if err != nil {
		log.Fatal(err)
	}
	defer robot.Close()
	pose, err := colugo.NewPublisher[[2]float64](robot, "robot/pose")
	if err != nil {
		log.Fatal(err)
	}

	recNode, err := colugo.NewNode("recorder", disc())
	if err != nil {
		log.Fatal(err)
	}
	defer recNode.Close()
	var file bytes.Buffer // an *os.File in a real program
	w, err := record.NewWriter(&file)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := record.NewRecorder(recNode, w, record.Topics("robot/pose"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	running := make(chan error, 1)
	go func() { running <- rec.Run(ctx) }()

	// Publish once the recorder subscribes, until it has written three.
	if err := pose.WaitSubscribers(ctx, 1); err != nil {
		log.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond) // a 100 Hz publisher
	defer tick.Stop()
	for i := 0; written(rec) < 3 && ctx.Err() == nil; i++ {
		_ = pose.Publish(ctx, [2]float64{float64(i), 0})
		<-tick.C
	}
	stop()
	if err := <-running; err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	sum, err := record.Scan(bytes.NewReader(file.Bytes()))
	if err != nil {
		log.Fatal(err)
	}
	for _, ch := range sum.Channels {
		fmt.Println(ch.Topic, ch.Codec, ch.Type, sum.Counts[ch.Topic] >= 3)
	}
	// Output:
	// robot/pose json [2]float64 true
}

// written is what rec has written so far.
func written(rec *record.Recorder) uint64 {
	var n uint64
	for _, p := range rec.Progress() {
		n += p.Messages
	}
	return n
}

// Record the topics a pattern matches, as their publishers appear, within
// one memory budget for all of them (WithQueueBudget).
func ExamplePatterns() {
	dir, err := os.MkdirTemp("", "record-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	disc := func() colugo.NodeOption { return colugo.WithDiscovery(local.New(local.WithDir(dir))) }

	robot, err := colugo.NewNode("robot", disc())
	if err != nil {
		log.Fatal(err)
	}
	defer robot.Close()
	var pubs []*colugo.Publisher[int]
	for _, topic := range []string{"robot/arm/pose", "robot/base/pose", "robot/arm/status"} {
		p, err := colugo.NewPublisher[int](robot, topic)
		if err != nil {
			log.Fatal(err)
		}
		pubs = append(pubs, p)
	}

	recNode, err := colugo.NewNode("recorder", disc())
	if err != nil {
		log.Fatal(err)
	}
	defer recNode.Close()
	var file bytes.Buffer
	w, err := record.NewWriter(&file)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := record.NewRecorder(recNode, w, record.Patterns("robot/*/pose"),
		record.WithQueueBudget(32<<20)) // what all its topics queue while the file lags
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	running := make(chan error, 1)
	go func() { running <- rec.Run(ctx) }()

	// The two pose publishers get a subscriber; the status one never does.
	for _, p := range pubs[:2] {
		if err := p.WaitSubscribers(ctx, 1); err != nil {
			log.Fatal(err)
		}
	}
	for i := range 3 {
		for _, p := range pubs {
			_ = p.Publish(ctx, i)
		}
	}
	for written(rec) < 6 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond) // a program would print progress here
	}
	stop()
	if err := <-running; err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	sum, err := record.Scan(bytes.NewReader(file.Bytes()))
	if err != nil {
		log.Fatal(err)
	}
	for _, ch := range sum.Channels {
		fmt.Println(ch.Topic, sum.Counts[ch.Topic])
	}
	// Unordered output:
	// robot/arm/pose 3
	// robot/base/pose 3
}
