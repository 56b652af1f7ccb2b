package colugo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/colugo-go/colugo"
)

// A relaying node (here a stand-in for a bridge) marks what it relays and
// carries a small status document; a peer sees both in its $describe, as
// colugo doctor does.
func ExampleNode_SetStatus() {
	newNode, cleanup := exampleSite()
	defer cleanup()
	relay := newNode("relay")
	defer relay.Close()

	var dropped atomic.Uint64 // counted as the relay goes
	_ = relay.SetStatus("link", func() any {
		return map[string]any{"state": "up", "dropped": dropped.Load()}
	})
	_, _ = colugo.NewPublisher[string](relay, "robot/pose",
		colugo.WithRelay(colugo.Relay{Via: "nats", Remote: "site-b", Name: "colugo.t.robot.pose"}))

	watcher := newNode("watcher")
	defer watcher.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ev := range watcher.Events(ctx) {
		p := ev.Peer
		if p.Name != "relay" || len(p.Topics) == 0 || p.Status["link"] == nil {
			continue
		}
		var st struct{ State string }
		_ = json.Unmarshal(p.Status["link"], &st)
		r := p.Topics[0].Relay
		fmt.Printf("%s: link %s; %s relayed via %s from %s\n", p.Name, st.State, p.Topics[0].Name, r.Via, r.Remote)
		break
	}
	// Output: relay: link up; robot/pose relayed via nats from site-b
}
