// Command publisher publishes a robot pose on "robot/pose" every period.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/signal"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/examples"
	"github.com/colugo-go/colugo/timer"
)

func main() {
	period := flag.Duration("period", 100*time.Millisecond, "time between poses")
	count := flag.Int("count", 0, "stop after this many poses (0: until interrupted)")
	lan := flag.Bool("lan", false, "also find peers on the LAN with mDNS")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	node, err := colugo.NewNode("publisher", examples.Discovery(*lan), examples.Errors())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	pub, err := colugo.NewPublisher[examples.Pose](node, "robot/pose")
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seq := 0
	_ = timer.Repeat(ctx, *period, func(ctx context.Context) {
		seq++
		if seq == *count {
			defer cancel() // also when this last publish fails
		}
		a := float64(seq) / 10
		p := examples.Pose{X: math.Cos(a), Y: math.Sin(a), Theta: a, Seq: seq}
		if err := pub.Publish(ctx, p); err != nil {
			log.Print(err)
			return
		}
		fmt.Printf("published %+v\n", p)
	})
}
