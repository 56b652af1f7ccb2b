// Command client calls "math/add" count times, one request per period.
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
	"github.com/colugo-go/colugo/examples"
)

func main() {
	count := flag.Int("count", 5, "number of requests")
	period := flag.Duration("period", 200*time.Millisecond, "time between requests")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of each request (it waits for a server within it)")
	lan := flag.Bool("lan", false, "also find peers on the LAN with mDNS")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	node, err := colugo.NewNode("client", examples.Discovery(*lan), examples.Errors())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	failed := 0
	for i := range *count {
		rctx, cancel := context.WithTimeout(ctx, *timeout)
		resp, err := colugo.Request[examples.AddRequest, examples.AddReply](rctx, node, "math/add", examples.AddRequest{A: i, B: 10})
		cancel()
		if err != nil {
			failed++
			log.Printf("request %d: %v", i, err)
		} else {
			fmt.Printf("%d + 10 = %d\n", i, resp.Sum)
		}
		if i == *count-1 {
			break
		}
		select {
		case <-ctx.Done():
			failed++
		case <-time.After(*period):
		}
		if ctx.Err() != nil {
			break
		}
	}
	node.Close() // before os.Exit, which skips deferred calls
	if failed > 0 {
		os.Exit(1)
	}
}
