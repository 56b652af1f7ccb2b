package foxglove_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/gateway/foxglove"
	"github.com/colugo-go/colugo/internal/testwait"
)

// On a sealed network the gateway holds the key: clients see the
// network's topics and services in plaintext and never the key, in any
// encoding, and a gateway without the key sees nothing of it.
func TestKeyedNetwork(t *testing.T) {
	key := []byte("gateway-test-network-key-0123456789")
	net := colugotest.NewNetwork(t)
	sealed := colugo.WithKey(key)
	gwNode := net.NewNode("gateway", sealed)
	gw, err := foxglove.New(gwNode)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = gw.Close() })
	r := &rig{t: t, net: net, node: gwNode, gw: gw, url: "ws" + strings.TrimPrefix(srv.URL, "http")}

	pubNode := net.NewNode("robot", sealed)
	pub, err := colugo.NewPublisher[Pose](pubNode, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := colugo.Serve(pubNode, "robot/echo", func(_ context.Context, p Pose) (Pose, error) { return p, nil }); err != nil {
		t.Fatal(err)
	}

	tc := r.dial([]string{foxglove.SubprotocolSDK}, true)
	var frames [][]byte
	keep := func(f tframe) { frames = append(frames, f.b) }
	tc.tap = keep
	ch := tc.channel("robot/pose")
	tc.send(map[string]any{"op": "subscribe", "subscriptions": []any{map[string]any{"id": 1, "channelId": ch["id"]}}})
	tc.send(map[string]any{"op": "subscribeConnectionGraph"})
	testwait.Until(t, "a plaintext pose", func() bool {
		_ = pub.Publish(context.Background(), Pose{X: 3, Y: 4})
		got := false
		drain(tc, func(f tframe) {
			var p Pose
			if !f.text && len(f.b) > 13 && json.Unmarshal(f.b[13:], &p) == nil && p == (Pose{3, 4}) {
				got = true
			}
		})
		return got
	})
	tc.send(map[string]any{"op": "bogus"}) // everything queued before comes before its answer
	tc.op("status")
	all := bytes.Join(frames, nil)
	for _, want := range []string{`"op":"advertiseServices"`, `"robot/echo"`, `"op":"connectionGraphUpdate"`} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("no %s in what the client got", want)
		}
	}
	for _, form := range [][]byte{key, []byte(hex.EncodeToString(key)), []byte(base64.StdEncoding.EncodeToString(key))} {
		for _, b := range frames {
			if bytes.Contains(b, form) {
				t.Fatalf("a frame to the client holds the key (%q): %q", form, b)
			}
		}
	}

	// A gateway without the key: the sealed robot answers nothing it can
	// read, so it advertises nothing of it.
	outNode := net.NewNode("outsider")
	out, err := foxglove.New(outNode)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if n := len(outNode.Peers()); n != 0 {
		t.Errorf("a node without the key describes %d sealed peers", n)
	}
	if s := out.Stats(); s.Channels != 0 {
		t.Errorf("a gateway without the key has %d channels", s.Channels)
	}
}
