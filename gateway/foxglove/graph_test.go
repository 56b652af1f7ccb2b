package foxglove_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/gateway/foxglove"
	"github.com/colugo-go/colugo/internal/testwait"
)

// graphState is a client's view of the connection graph, built from the
// updates as the spec says: each entry replaces that name's list.
type graphState struct {
	pubs, subs, svcs map[string][]string
	updates          int
}

func (g *graphState) apply(m map[string]any) {
	if g.pubs == nil {
		g.pubs, g.subs, g.svcs = map[string][]string{}, map[string][]string{}, map[string][]string{}
	}
	g.updates++
	set := func(dst map[string][]string, list any, ids string) {
		for _, e := range list.([]any) {
			e := e.(map[string]any)
			var v []string
			for _, id := range e[ids].([]any) {
				v = append(v, id.(string))
			}
			if len(v) == 0 {
				delete(dst, e["name"].(string))
			} else {
				dst[e["name"].(string)] = v
			}
		}
	}
	set(g.pubs, m["publishedTopics"], "publisherIds")
	set(g.subs, m["subscribedTopics"], "subscriberIds")
	set(g.svcs, m["advertisedServices"], "providerIds")
	for _, n := range m["removedTopics"].([]any) {
		delete(g.pubs, n.(string))
		delete(g.subs, n.(string))
	}
	for _, n := range m["removedServices"].([]any) {
		delete(g.svcs, n.(string))
	}
}

func (g *graphState) String() string {
	var b strings.Builder
	for _, part := range []struct {
		what string
		m    map[string][]string
	}{{"pub", g.pubs}, {"sub", g.subs}, {"svc", g.svcs}} {
		names := make([]string, 0, len(part.m))
		for n := range part.m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "%s %s %v; ", part.what, n, part.m[n])
		}
	}
	return b.String()
}

// waitGraph applies updates until the client's graph reads want.
func (tc *tclient) waitGraph(g *graphState, want string) {
	tc.t.Helper()
	tc.next("graph "+want, func(f tframe) bool {
		if f.op == "connectionGraphUpdate" {
			g.apply(f.m)
		}
		return g.String() == want
	})
}

func TestConnectionGraph(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cam := r.net.NewNode("camera")
	pub, err := colugo.NewPublisher[Pose](cam, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	viewer := r.net.NewNode("viewer")
	vctx, vcancel := context.WithCancel(ctx)
	if _, err := colugo.Subscribe[Pose](vctx, viewer, "robot/pose"); err != nil {
		t.Fatal(err)
	}
	math := r.net.NewNode("math")
	if _, err := colugo.Serve(math, "math/add", func(_ context.Context, a Pose) (Pose, error) { return a, nil }); err != nil {
		t.Fatal(err)
	}
	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	if caps := tc.op("serverInfo").m["capabilities"].([]any); !slices.Contains(caps, any("connectionGraph")) {
		t.Fatalf("capabilities %v lack connectionGraph", caps)
	}
	var g graphState
	tc.send(map[string]any{"op": "subscribeConnectionGraph"})
	tc.waitGraph(&g, "pub robot/pose [camera]; sub robot/pose [viewer]; svc math/add [math]; ")

	// The gateway's own subscription, made for a client, is in the graph.
	ch := tc.channel("robot/pose")
	tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 1, "channelId": ch["id"]}}})
	tc.waitGraph(&g, "pub robot/pose [camera]; sub robot/pose [gateway viewer]; svc math/add [math]; ")
	tc.send(map[string]any{"op": "unsubscribe", "subscriptionIds": []any{1}})
	tc.waitGraph(&g, "pub robot/pose [camera]; sub robot/pose [viewer]; svc math/add [math]; ")

	// A second node named camera: both get their id's prefix.
	cam2 := r.net.NewNode("camera")
	if _, err := colugo.NewPublisher[Pose](cam2, "robot/pose"); err != nil {
		t.Fatal(err)
	}
	ids := []string{"camera#" + cam.ID()[:8], "camera#" + cam2.ID()[:8]}
	slices.Sort(ids)
	tc.waitGraph(&g, fmt.Sprintf("pub robot/pose %v; sub robot/pose [viewer]; svc math/add [math]; ", ids))
	if err := cam2.Close(); err != nil {
		t.Fatal(err)
	}
	tc.waitGraph(&g, "pub robot/pose [camera]; sub robot/pose [viewer]; svc math/add [math]; ")

	// Publishers, subscribers and servers leave: their names go.
	vcancel()
	tc.waitGraph(&g, "pub robot/pose [camera]; svc math/add [math]; ")
	_ = pub.Close()
	_ = math.Close()
	tc.waitGraph(&g, "")

	// After unsubscribing, no more updates: a bad op's status error comes
	// after any update the late publisher would have caused.
	tc.send(map[string]any{"op": "unsubscribeConnectionGraph"})
	tc.send(map[string]any{"op": "bogus"}) // ops are taken in order: its answer means the unsubscribe is
	tc.op("status")
	late := r.net.NewNode("late")
	lp, err := colugo.NewPublisher[Pose](late, "late/topic")
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	tc.channel("late/topic")
	tc.send(map[string]any{"op": "bogus"})
	updates := 0
	tc.next("the status error", func(f tframe) bool {
		if f.op == "connectionGraphUpdate" {
			updates++
		}
		return f.op == "status"
	})
	if updates != 0 {
		t.Errorf("%d graph updates after unsubscribeConnectionGraph", updates)
	}
}

// drain hands f every frame already queued.
func drain(tc *tclient, f func(tframe)) {
	for {
		select {
		case fr, ok := <-tc.frames:
			if !ok {
				return
			}
			tc.note(fr)
			if tc.tap != nil {
				tc.tap(fr)
			}
			f(fr)
		default:
			return
		}
	}
}

// A client's published topic is a channel for the other clients and
// shows the gateway as its publisher.
func TestClientPublishedChannelAndGraph(t *testing.T) {
	r := newRig(t, foxglove.WithAllowPublish(true))
	a := r.dial([]string{foxglove.SubprotocolSDK}, true)
	b := r.dial([]string{foxglove.SubprotocolSDK}, true)
	var g graphState
	b.send(map[string]any{"op": "subscribeConnectionGraph"})
	a.send(map[string]any{"op": "advertise", "channels": []any{map[string]any{"id": 1, "topic": "cmd/vel", "encoding": "json", "schemaName": "Twist",
		"schemaEncoding": "jsonschema", "schema": `{"type":"object","properties":{"x":{"type":"number"}}}`}}})
	b.waitGraph(&g, "pub cmd/vel [gateway]; ")
	ch := b.channel("cmd/vel")
	if ch["encoding"] != "json" || ch["schemaName"] != "Twist" || ch["schemaEncoding"] != "jsonschema" ||
		ch["schema"] != `{"type":"object","properties":{"x":{"type":"number"}}}` {
		t.Errorf("channel %v", ch)
	}
	b.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 3, "channelId": ch["id"]}}})
	b.waitGraph(&g, "pub cmd/vel [gateway]; sub cmd/vel [gateway]; ")
	testwait.Until(t, "b to get a's message", func() bool {
		a.sendRaw(false, append([]byte{1, 1, 0, 0, 0}, `{"x":1}`...))
		got := false
		drain(b, func(f tframe) {
			if !f.text && len(f.b) > 13 && string(f.b[13:]) == `{"x":1}` {
				got = true
			}
		})
		return got
	})
	a.send(map[string]any{"op": "unadvertise", "channelIds": []any{1}})
	b.next("unadvertise of cmd/vel", func(f tframe) bool {
		return f.op == "unadvertise" && slices.Contains(f.m["channelIds"].([]any), ch["id"])
	})
}
