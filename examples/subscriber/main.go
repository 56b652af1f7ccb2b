// Command subscriber prints the poses published on "robot/pose".
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
	count := flag.Int("count", 0, "exit after this many poses (0: until interrupted)")
	lan := flag.Bool("lan", false, "also find peers on the LAN with mDNS")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	node, err := colugo.NewNode("subscriber", examples.Discovery(*lan), examples.Errors())
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	poses, err := colugo.Subscribe[examples.Pose](ctx, node, "robot/pose")
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	for p := range poses { // ends on interrupt: the node closes the channel when ctx ends
		fmt.Printf("received %+v\n", p)
		if n++; n == *count {
			return
		}
	}
}
