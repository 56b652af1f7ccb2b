// Command protobuf publishes or prints poses encoded with protobuf, and
// serves or calls a protobuf service, math/add.pb (posepb.AddRequest to
// posepb.AddReply):
//
//	go run ./examples/protobuf sub
//	go run ./examples/protobuf pub
//	go run ./examples/protobuf serve
//	go run ./examples/protobuf call -count 3
//
// Tools decode both without these types: colugo echo robot/pose.pb,
// colugo call math/add.pb '{"a":2,"b":40}' (from the descriptors the
// nodes advertise).
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
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	role := os.Args[1]
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pb := colugo.WithCodec(protobuf.Codec{})

	node, err := colugo.NewNode("protobuf-"+role, examples.Discovery(*lan), examples.Errors())
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
	case "serve":
		_, err := colugo.Serve(node, "math/add.pb", func(_ context.Context, r *posepb.AddRequest) (*posepb.AddReply, error) {
			fmt.Printf("add %d + %d\n", r.A, r.B)
			return &posepb.AddReply{Sum: r.A + r.B}, nil
		}, pb)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("serving math/add.pb")
		<-ctx.Done()
	case "call":
		if err := node.WaitServers(ctx, "math/add.pb", 1); err != nil {
			log.Fatal(err)
		}
		for i := 0; *count == 0 || i < *count; i++ {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			r, err := colugo.Request[*posepb.AddRequest, *posepb.AddReply](cctx, node, "math/add.pb", &posepb.AddRequest{A: int64(i), B: 40}, pb)
			cancel()
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%d + 40 = %d\n", i, r.Sum)
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

const usage = "usage: protobuf pub|sub|serve|call [-count N]"
