package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// describedBridge describes the bridge node named name afresh, from a new
// node on net (as colugo doctor does), until ok accepts what it says, and
// returns the node's PeerInfo and status.
func describedBridge(t *testing.T, net *colugotest.Network, name string, ok func(colugo.PeerInfo, bridge.Status) bool) (colugo.PeerInfo, bridge.Status) {
	t.Helper()
	var info colugo.PeerInfo
	var st bridge.Status
	testwait.Until(t, "a description of "+name+" as wanted", func() bool {
		w := net.NewNode("watcher")
		defer w.Close()
		var p colugo.PeerInfo
		if !testwait.For(time.Second, func() bool {
			var found bool
			p, found = peerNamed(w, name)
			return found
		}) {
			return false
		}
		st = bridge.Status{}
		if doc := p.Status[bridge.StatusName]; doc != nil {
			if err := json.Unmarshal(doc, &st); err != nil {
				t.Fatalf("status: %v: %s", err, doc)
			}
		}
		info = p
		return ok(p, st)
	})
	return info, st
}

func peerNamed(n *colugo.Node, name string) (colugo.PeerInfo, bool) {
	for _, p := range n.Peers() {
		if p.Name == name {
			return p, true
		}
	}
	return colugo.PeerInfo{}, false
}

func topicInfo(ts []colugo.TopicInfo, name string) (colugo.TopicInfo, bool) {
	i := slices.IndexFunc(ts, func(t colugo.TopicInfo) bool { return t.Name == name })
	if i < 0 {
		return colugo.TopicInfo{}, false
	}
	return ts[i], true
}

// TestStatusInDescribe: a bridge node's $describe says it is a bridge
// (site, id), lists its entries, what it exports and imports, marks its
// imported topics and services and its export subscriptions as relayed
// (from which site, on which subject), and carries its link state and
// drop counts, current when it is described; Close removes the status.
func TestStatusInDescribe(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export = bridge.Lists{Topics: []bridge.Topic{{Name: "robot/**", MaxPayload: 64}}, Services: []bridge.Service{{Name: "math/add"}}}
	cb := cfgFor(srv, "b")
	cb.Import = bridge.Lists{Topics: []bridge.Topic{{Name: "robot/**", MaxRate: 1000}}, Services: []bridge.Service{{Name: "math/add"}}}
	ba, _ := runBridge(t, a, ca)
	bb, _ := runBridge(t, b, cb)

	robot := a.NewNode("robot")
	pub, err := colugo.NewPublisher[Pose](robot, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(robot, "math/add", func(_ context.Context, r [2]int) (int, error) { return r[0] + r[1], nil }); err != nil {
		t.Fatal(err)
	}
	viewer := b.NewNode("viewer")
	poses, err := colugo.Subscribe[Pose](t.Context(), viewer, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	until(t, "a pose across", func() { _ = pub.Publish(t.Context(), Pose{X: 1}) }, recv(poses, func(Pose) bool { return true }))
	if err := viewer.WaitServers(t.Context(), "math/add", 1); err != nil {
		t.Fatal(err)
	}
	// A drop: a message above the export entry's max_payload.
	if err := pub.Publish(t.Context(), Pose{X: 1, Seq: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	big, err := colugo.NewPublisher[string](robot, "robot/log")
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the payload drop counted", func() bool {
		_ = big.Publish(t.Context(), strings.Repeat("x", 100))
		return ba.Stats().Export.Drops.Payload > 0
	})

	// Site b's bridge: imports, relayed from a.
	info, st := describedBridge(t, b, "bridge-b", func(p colugo.PeerInfo, st bridge.Status) bool {
		_, ok := topicInfo(p.Topics, "robot/pose")
		return ok && len(p.Services) == 1 && st.Stats.Import.Messages > 0
	})
	if st.Site != "b" || st.ID != bb.ID() || st.Stats.Link != bridge.LinkUp || st.Server != srv.ClientURL() || st.Truncated {
		t.Errorf("b's status: %+v", st)
	}
	if want := (bridge.Rules{Topics: []bridge.Rule{{Name: "robot/**", MaxRate: 1000}}, Services: []bridge.Rule{{Name: "math/add"}}}); !equalRules(st.Import, want) || len(st.Export.Topics)+len(st.Export.Services) != 0 {
		t.Errorf("b's entries: export %+v import %+v", st.Export, st.Import)
	}
	if !slices.Equal(st.Importing.Services, []string{"math/add"}) {
		t.Errorf("b imports services %v", st.Importing.Services)
	}
	pose, _ := topicInfo(info.Topics, "robot/pose")
	if r := pose.Relay; r == nil || *r != (colugo.Relay{Via: "nats", Remote: "a", Name: "colugo.t.robot.pose"}) {
		t.Errorf("b's robot/pose relay: %+v", r)
	}
	if r := info.Services[0].Relay; info.Services[0].Name != "math/add" || r == nil || *r != (colugo.Relay{Via: "nats", Remote: "a", Name: "colugo.s.math.add"}) {
		t.Errorf("b's math/add: %+v", info.Services[0])
	}

	// Site a's bridge: exports, and the drop.
	info, st = describedBridge(t, a, "bridge-a", func(_ colugo.PeerInfo, st bridge.Status) bool {
		return st.Stats.Export.Drops.Payload > 0 && len(st.Exporting.Services) == 1
	})
	if st.Site != "a" || st.ID != ba.ID() || !slices.Contains(st.Exporting.Topics, "robot/pose") ||
		!slices.Equal(st.Exporting.Services, []string{"math/add"}) || st.Export.Topics[0] != (bridge.Rule{Name: "robot/**", MaxPayload: 64}) {
		t.Errorf("a's status: %+v", st)
	}
	sub, ok := topicInfo(info.Subscriptions, "robot/pose")
	if r := sub.Relay; !ok || r == nil || *r != (colugo.Relay{Via: "nats", Name: "colugo.t.robot.pose"}) {
		t.Errorf("a's export subscription: %+v", sub)
	}

	// The link goes down: a fresh description says so.
	srv.Shutdown()
	// nats.go counts the disconnect in a handler it runs after the link
	// state changes: wait for both.
	_, st = describedBridge(t, a, "bridge-a", func(_ colugo.PeerInfo, st bridge.Status) bool {
		return st.Stats.Link == bridge.LinkDown && st.Stats.Disconnects > 0
	})
	if st.Server != "" || st.Stats.Disconnects == 0 {
		t.Errorf("a's status with the link down: %+v", st)
	}

	// Closed: no longer a bridge.
	ba.Close()
	describedBridge(t, a, "bridge-a", func(p colugo.PeerInfo, _ bridge.Status) bool { return p.Status == nil })
}

func equalRules(a, b bridge.Rules) bool {
	return slices.Equal(a.Topics, b.Topics) && slices.Equal(a.Services, b.Services)
}

// TestStatusBounded: a bridge with many long entries still carries a
// status within colugo.MaxStatusBytes, marked truncated.
func TestStatusBounded(t *testing.T) {
	srv := natsServer(t, 0)
	net := colugotest.NewNetwork(t)
	cfg := cfgFor(srv, "a")
	for i := range 200 {
		name := fmt.Sprintf("%03d/", i) + strings.Repeat("x", 200) + "/" + strings.Repeat("y", i) // distinct once clipped
		cfg.Export.Topics = append(cfg.Export.Topics, bridge.Topic{Name: name[:min(len(name), 255)]})
	}
	b, _ := runBridge(t, net, cfg)
	st := b.Status()
	if len(st.Export.Topics) != 64 || !st.Truncated {
		t.Errorf("Status: %d export entries, truncated %v; want 64, true", len(st.Export.Topics), st.Truncated)
	}
	info, st := describedBridge(t, net, "bridge-a", func(colugo.PeerInfo, bridge.Status) bool { return true })
	if n := len(info.Status[bridge.StatusName]); n > colugo.MaxStatusBytes || !st.Truncated || len(st.Export.Topics) == 0 || st.Site != "a" {
		t.Errorf("status document of %d bytes, %d entries, truncated %v", n, len(st.Export.Topics), st.Truncated)
	}
}
