// Package examples holds colugo's example programs, each a separate main
// package run with `go run ./examples/NAME`. They find each other through
// host-local discovery (add -lan for mDNS on the LAN too; COLUGO_DISCOVERY
// wins over both), so run them in separate terminals on one machine:
//
//	go run ./examples/subscriber        # prints poses
//	go run ./examples/publisher         # publishes a pose every 100 ms
//	go run ./examples/server            # serves math/add
//	go run ./examples/client            # calls math/add
//	go run ./examples/protobuf sub      # the same pub/sub with protobuf (-count N after the role)
//	go run ./examples/protobuf pub
//	go run ./examples/protobuf serve    # serves math/add.pb (protobuf); call calls it
//	go run ./examples/description pub   # publishes the robot description once and keeps it (WithHistory)
//	go run ./examples/description sub   # started later, gets it at once (WithLastValue); or: latest (Latest)
//	go run ./examples/demo              # two processes that find each other and talk, then exit
package examples

import (
	"errors"
	"fmt"
	"log"
	"sync"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/discovery/mdns"
)

// Pose is the message the JSON examples exchange.
type Pose struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Theta float64 `json:"theta"`
	Seq   int     `json:"seq"`
}

// AddRequest and AddReply are the math/add service's messages.
type AddRequest struct {
	A int `json:"a"`
	B int `json:"b"`
}

// AddReply is the reply of math/add.
type AddReply struct {
	Sum int `json:"sum"`
}

// Discovery is how the example programs find each other: the host-local
// registry (they run on one machine), plus mDNS on the LAN when lan is set
// (the -lan flag). COLUGO_DISCOVERY, when set, wins over both.
func Discovery(lan bool) colugo.NodeOption {
	if lan {
		return colugo.WithDiscovery(discovery.Multi(local.New(), mdns.New()))
	}
	return colugo.WithDiscovery(local.New())
}

// Errors makes a node report its non-terminal errors on stderr (the
// library is silent by default): a message that does not decode, or whose
// codec or type differs from the subscriber's (a publisher of the same
// topic with another codec), once per topic, sender, codec and type, and
// every other error as it comes (slow consumers are reported once per
// episode already).
func Errors() colugo.NodeOption {
	var mu sync.Mutex
	seen := map[colugo.DecodeError]bool{}
	return colugo.WithErrorHandler(func(err error) {
		var de *colugo.DecodeError
		if errors.As(err, &de) {
			k := colugo.DecodeError{Topic: de.Topic, Sender: de.Sender, Codec: de.Codec, Type: de.Type}
			mu.Lock()
			first, full := !seen[k], len(seen) >= maxReported
			if first && !full {
				seen[k] = true
			}
			mu.Unlock()
			if !first || full {
				return // senders come from the network: what is remembered is bounded
			}
			err = fmt.Errorf("%w (reported once for this topic, sender, codec and type)", err)
		}
		log.Print(err)
	})
}

// maxReported bounds the distinct (topic, sender, codec, type) mismatches
// reported, and so remembered: a peer can forge any number of senders.
const maxReported = 1024
