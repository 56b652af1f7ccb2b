package local_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
)

// Two nodes on one host find each other through a registry directory:
// each writes its own file there and reads the others'. The default
// directory is $XDG_RUNTIME_DIR/colugo (or the temp dir's); a directory of
// its own keeps a group of programs (or a test) apart from every other.
func Example() {
	dir, err := os.MkdirTemp("", "local-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	camera, err := colugo.NewNode("camera", colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		log.Fatal(err)
	}
	defer camera.Close()
	viewer, err := colugo.NewNode("viewer", colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		log.Fatal(err)
	}
	defer viewer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ev := range viewer.Events(ctx) {
		fmt.Println(ev.Kind, ev.Peer.Name)
		break
	}
	// Output:
	// joined camera
}
