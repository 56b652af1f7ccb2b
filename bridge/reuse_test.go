package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
)

// fromNATS is one message or request a NATS client sends a bridge: its
// origin and metadata fields.
type fromNATS struct {
	site, bridge string
	md           colugo.Metadata
}

// reuseCases alternate origins and metadata, so that a bridge reusing the
// last message's origin and metadata (as it does when the next one has the
// same origin and no metadata) shows if it reuses them where it must not.
var reuseCases = []fromNATS{
	{"x", "bx", colugo.Metadata{"tenant": "t1"}},
	{"x", "bx", nil},
	{"x", "bx", nil},
	{"y", "by", nil},
	{"x", "by", nil},
	{"x", "bx", nil},
	{"y", "by", colugo.Metadata{"tenant": "t2", "traceparent": "00-x"}},
	{"y", "by", nil},
}

func (f fromNATS) header(h nats.Header) {
	h.Set("Colugo-Codec", "json")
	h.Set("Colugo-Origin", f.site)
	h.Set("Colugo-Bridge", f.bridge)
	for k, v := range f.md {
		h.Set("Colugo-Md-"+k, v)
	}
}

// want is the metadata the site must see: f's, and its origin.
func (f fromNATS) want() colugo.Metadata {
	md := maps.Clone(f.md)
	if md == nil {
		md = colugo.Metadata{}
	}
	md["colugo.bridge.origin"] = f.site + " " + f.bridge
	return md
}

// TestImportMetadataPerMessage: each imported message carries its own
// origin and metadata, whatever the message before it carried.
func TestImportMetadataPerMessage(t *testing.T) {
	srv := natsServer(t, 0)
	b := colugotest.NewNetwork(t)
	cb := cfgFor(srv, "b")
	cb.Import.Topics = []bridge.Topic{{Name: "md"}}
	runBridge(t, b, cb)
	nc := natsClient(t, srv)
	got, err := colugo.SubscribeReceived[int](t.Context(), b.NewNode("viewer"), "md")
	if err != nil {
		t.Fatal(err)
	}
	send := func(i int) {
		m := nats.NewMsg("colugo.t.md")
		reuseCases[i%len(reuseCases)].header(m.Header)
		m.Data = fmt.Appendf(nil, "%d", i)
		_ = nc.PublishMsg(m)
	}
	until(t, "the first message", func() { send(-1 + len(reuseCases)) }, recv(got, func(r colugo.Received[int]) bool { return true }))
	for i := range reuseCases {
		send(i)
	}
	// One NATS subscription, one local publisher: in order.
	for i := range reuseCases {
		var r colugo.Received[int]
		if !recv(got, func(v colugo.Received[int]) bool { r = v; return v.Value == i })(wait) {
			t.Fatalf("message %d never arrived", i)
		}
		if want := reuseCases[i].want(); !maps.Equal(r.Metadata, want) {
			t.Errorf("message %d: metadata %v, want %v", i, r.Metadata, want)
		}
	}
}

// TestExportMetadataPerRequest: each request from NATS reaches the local
// server with its own origin and metadata and its own deadline, whatever
// the request before it carried.
func TestExportMetadataPerRequest(t *testing.T) {
	srv := natsServer(t, 0)
	a := colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Services = []bridge.Service{{Name: "md"}}
	runBridge(t, a, ca)
	type seen struct {
		MD   colugo.Metadata
		Left int64 // ns; -1: no deadline
	}
	if _, err := colugo.Serve(a.NewNode("server"), "md", func(ctx context.Context, i int) (seen, error) {
		s := seen{MD: colugo.IncomingMetadata(ctx), Left: -1}
		if d, ok := ctx.Deadline(); ok {
			s.Left = int64(time.Until(d))
		}
		return s, nil
	}); err != nil {
		t.Fatal(err)
	}
	nc := natsClient(t, srv)
	request := func(i int, timeout time.Duration) (*nats.Msg, error) {
		m := nats.NewMsg("colugo.s.md")
		reuseCases[i%len(reuseCases)].header(m.Header)
		if timeout > 0 {
			m.Header.Set("Colugo-Timeout", fmt.Sprint(int64(timeout)))
		}
		m.Data = fmt.Appendf(nil, "%d", i)
		return nc.RequestMsg(m, 5*time.Second)
	}
	testwait.Until(t, "md exported", func() bool {
		r, err := request(1, 0)
		return err == nil && r.Header.Get("Colugo-Status") == ""
	})
	for i := range 2 * len(reuseCases) {
		timeout := time.Duration(0)
		if i%3 != 0 {
			timeout = time.Duration(i) * time.Minute
		}
		r, err := request(i, timeout)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if s := r.Header.Get("Colugo-Status"); s != "" {
			t.Fatalf("request %d: status %s: %s", i, s, r.Header.Get("Colugo-Error"))
		}
		var s seen
		if err := json.Unmarshal(r.Data, &s); err != nil {
			t.Fatalf("request %d: %s: %v", i, r.Data, err)
		}
		if want := reuseCases[i%len(reuseCases)].want(); !maps.Equal(s.MD, want) {
			t.Errorf("request %d: metadata %v, want %v", i, s.MD, want)
		}
		// Without a timeout, the bridge's node applies its default.
		if left := time.Duration(s.Left); timeout == 0 && left <= 0 || timeout > 0 && (left > timeout || left < timeout-time.Minute/2) {
			t.Errorf("request %d: %v left of %v", i, s.Left, timeout)
		}
	}
}
