// Command server serves "math/add" until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/examples"
)

func main() {
	lan := flag.Bool("lan", false, "also find peers on the LAN with mDNS")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	node, err := colugo.NewNode("server", examples.Discovery(*lan), examples.Errors())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	_, err = colugo.Serve(node, "math/add", func(ctx context.Context, r examples.AddRequest) (examples.AddReply, error) {
		fmt.Printf("add %d + %d\n", r.A, r.B)
		return examples.AddReply{Sum: r.A + r.B}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("serving math/add; Ctrl-C to stop")
	<-ctx.Done()
}
