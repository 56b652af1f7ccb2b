package colugo_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// peerNamed returns n's view of the peer named name, if it has one.
func peerNamed(n *colugo.Node, name string) (colugo.PeerInfo, bool) {
	for _, p := range n.Peers() {
		if p.Name == name {
			return p, true
		}
	}
	return colugo.PeerInfo{}, false
}

// A node's status documents and relays reach its peers' Peers; a status
// added later reaches them too (its name changes the catalog), a removed
// one goes.
func TestStatusAndRelayInDescribe(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	relay := net.NewNode("relay")
	watcher := net.NewNode("watcher")
	from := colugo.WithRelay(colugo.Relay{Via: "nats", Remote: "site-b", Name: "colugo.t.robot.pose"})
	if _, err := colugo.NewPublisher[Pose](relay, "robot/pose", from); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.NewPublisher[Pose](relay, "robot/own"); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Subscribe[[]byte](t.Context(), relay, "robot/cmd", colugo.WithCodec(codec.Raw{}),
		colugo.WithRelay(colugo.Relay{Via: "nats", Name: "colugo.t.robot.cmd"})); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(relay, "math/add", add, colugo.WithRelay(colugo.Relay{Via: "nats", Remote: "site-b"})); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	type doc struct {
		Site  string `json:"site"`
		Calls int64  `json:"calls"`
	}
	if err := relay.SetStatus("bridge", func() any { return doc{"a", calls.Add(1)} }); err != nil {
		t.Fatal(err)
	}
	var p colugo.PeerInfo
	testwait.Until(t, "the relay described with its status", func() bool {
		var ok bool
		p, ok = peerNamed(watcher, "relay")
		return ok && len(p.Services) == 1 && len(p.Subscriptions) == 1 && p.Status["bridge"] != nil
	})
	var d doc
	if err := json.Unmarshal(p.Status["bridge"], &d); err != nil || d.Site != "a" || d.Calls < 1 {
		t.Fatalf("status: %s %v", p.Status["bridge"], err)
	}
	want := map[string]*colugo.Relay{"robot/pose": {Via: "nats", Remote: "site-b", Name: "colugo.t.robot.pose"}, "robot/own": nil}
	for _, ti := range p.Topics {
		if w := want[ti.Name]; (w == nil) != (ti.Relay == nil) || (w != nil && *w != *ti.Relay) {
			t.Errorf("topic %s: relay %+v, want %+v", ti.Name, ti.Relay, w)
		}
	}
	if r := p.Subscriptions[0].Relay; r == nil || *r != (colugo.Relay{Via: "nats", Name: "colugo.t.robot.cmd"}) {
		t.Errorf("subscription relay %+v", r)
	}
	if r := p.Services[0].Relay; r == nil || *r != (colugo.Relay{Via: "nats", Remote: "site-b"}) {
		t.Errorf("service relay %+v", r)
	}

	if err := relay.SetStatus("gateway", func() any { return "up" }); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the new status name seen", func() bool {
		p, _ := peerNamed(watcher, "relay")
		return string(p.Status["gateway"]) == `"up"`
	})
	if err := relay.SetStatus("bridge", nil); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the removed status gone", func() bool {
		p, _ := peerNamed(watcher, "relay")
		return p.Status["bridge"] == nil && p.Status["gateway"] != nil
	})
}

// SetStatus's documented bounds: names of 1-64 bytes of [a-z0-9._-], 8
// documents, MaxStatusBytes per document (longer ones, or unencodable
// ones, are left out of $describe).
func TestSetStatusBounds(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	n := net.NewNode("n")
	watcher := net.NewNode("watcher")
	if colugo.MaxStatusBytes != 16<<10 {
		t.Errorf("MaxStatusBytes = %d, documented 16 KiB", colugo.MaxStatusBytes)
	}
	for _, bad := range []string{"", "Bridge", "a b", "é", "a/b", strings.Repeat("a", 65)} {
		if err := n.SetStatus(bad, func() any { return 1 }); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("SetStatus(%q): %v, want ErrInvalidOption", bad, err)
		}
	}
	if err := n.SetStatus("nothing", nil); err != nil { // removing what is not there
		t.Errorf("removing an absent status: %v", err)
	}
	// A string of n bytes encodes to n+2.
	exact := strings.Repeat("x", colugo.MaxStatusBytes-2)
	docs := map[string]func() any{
		strings.Repeat("a", 64): func() any { return 1 },
		"exact":                 func() any { return exact },
		"over":                  func() any { return exact + "x" },
		"unencodable":           func() any { return make(chan int) },
		"null":                  func() any { return nil },
		"f.6":                   func() any { return 6 },
		"g-7":                   func() any { return 7 },
		"h_8":                   func() any { return 8 },
	}
	for name, f := range docs {
		if err := n.SetStatus(name, f); err != nil {
			t.Fatalf("SetStatus(%q): %v", name, err)
		}
	}
	if err := n.SetStatus("ninth", func() any { return 9 }); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Errorf("a ninth status: %v, want ErrInvalidOption", err)
	}
	if err := n.SetStatus("h_8", func() any { return 88 }); err != nil { // replacing one is not adding
		t.Errorf("replacing the eighth: %v", err)
	}
	var p colugo.PeerInfo
	testwait.Until(t, "n described with its status", func() bool {
		var ok bool
		p, ok = peerNamed(watcher, "n")
		return ok && p.Status != nil
	})
	for _, name := range []string{"over", "unencodable", "null"} {
		if _, ok := p.Status[name]; ok {
			t.Errorf("status %q was sent", name)
		}
	}
	if len(p.Status) != 5 || len(p.Status["exact"]) != colugo.MaxStatusBytes || string(p.Status["h_8"]) != "88" {
		t.Errorf("status kept: %d documents, exact %d bytes, h_8 %s", len(p.Status), len(p.Status["exact"]), p.Status["h_8"])
	}
}

// WithRelay cuts fields to 255 bytes on a UTF-8 boundary, and a Relay
// without Via marks nothing.
func TestWithRelayBounds(t *testing.T) {
	t.Parallel()
	net := colugotest.NewNetwork(t)
	n := net.NewNode("n")
	watcher := net.NewNode("watcher")
	long := strings.Repeat("é", 200) // 400 bytes
	if _, err := colugo.NewPublisher[int](n, "long", colugo.WithRelay(colugo.Relay{Via: "nats", Remote: long, Name: strings.Repeat("s", 300)})); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.NewPublisher[int](n, "none", colugo.WithRelay(colugo.Relay{Remote: "x"})); err != nil {
		t.Fatal(err)
	}
	if s := colugo.WithRelay(colugo.Relay{Via: "nats", Remote: "b", Name: "s"}).(interface{ String() string }).String(); s != "WithRelay(nats b s)" {
		t.Errorf("String: %s", s)
	}
	var p colugo.PeerInfo
	testwait.Until(t, "n described", func() bool {
		var ok bool
		p, ok = peerNamed(watcher, "n")
		return ok && len(p.Topics) == 2
	})
	for _, ti := range p.Topics {
		switch ti.Name {
		case "long":
			if ti.Relay == nil || ti.Relay.Remote != strings.Repeat("é", 127) || ti.Relay.Name != strings.Repeat("s", 255) {
				t.Errorf("long relay: %+v", ti.Relay)
			}
		case "none":
			if ti.Relay != nil {
				t.Errorf("a relay without Via: %+v", ti.Relay)
			}
		}
	}
}
