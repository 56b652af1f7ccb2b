// Command protobuf publishes or prints poses encoded with protobuf:
//
//	go run ./examples/protobuf sub
//	go run ./examples/protobuf pub
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/examples"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/colugo-go/colugo/timer"
)

func main() {
	// The subcommand comes first; its flags follow it: protobuf pub -count 5.
	fs := flag.NewFlagSet("protobuf", flag.ExitOnError)
	count := fs.Int("count", 0, "stop after this many poses (0: until interrupted)")
	lan := fs.Bool("lan", false, "also find peers on the LAN with mDNS")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: protobuf pub|sub [-count N]")
		os.Exit(2)
	}
	role := os.Args[1]
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pb := colugo.WithCodec(protobuf.Codec{})

	node, err := colugo.NewNode("protobuf-"+role, examples.Discovery(*lan))
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	switch role {
	case "pub":
		pub, err := colugo.NewPublisher[*posepb.Pose](node, "robot/pose.pb", pb)
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n := 0
		_ = timer.Repeat(ctx, 100*time.Millisecond, func(ctx context.Context) {
			n++
			p := &posepb.Pose{X: float64(n), Y: 2, Theta: 0.5, Frame: "map"}
			if err := pub.Publish(ctx, p); err == nil {
				fmt.Println("published", p)
			}
			if n == *count {
				cancel()
			}
		})
	case "sub":
		poses, err := colugo.Subscribe[*posepb.Pose](ctx, node, "robot/pose.pb", pb)
		if err != nil {
			log.Fatal(err)
		}
		n := 0
		for p := range poses {
			fmt.Println("received", p)
			if n++; n == *count {
				return
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: protobuf pub|sub [-count N]")
		os.Exit(2)
	}
}
