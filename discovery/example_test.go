package discovery_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
)

// Where nothing can be discovered (a VPN, an isolated Wi-Fi, containers),
// a node is given the router address of a seed; it learns the seed's name,
// topics and publisher address by asking it. Seeds on loopback (and no
// seeds at all) keep a node host-only: it listens on 127.0.0.1.
func ExampleStatic() {
	seed, err := colugo.NewNode("seed", colugo.WithDiscovery(discovery.Static()))
	if err != nil {
		log.Fatal(err)
	}
	defer seed.Close()

	robot, err := colugo.NewNode("robot", colugo.WithDiscovery(discovery.Static(seed.Endpoint().Router)))
	if err != nil {
		log.Fatal(err)
	}
	defer robot.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ev := range robot.Events(ctx) {
		fmt.Println(ev.Kind, ev.Peer.Name)
		break
	}
	// Output:
	// joined seed
}
