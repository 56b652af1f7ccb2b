package bridge_test

import (
	"context"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/examples/posepb"
)

type serverAdd struct{ A, B int }
type clientAdd struct{ A, B int } // another Go type name: JSON does not care
type sum struct{ Sum int }

// TestServiceTypes: an imported service takes what its remote server
// takes: JSON requests whatever their Go type's name, and protobuf
// requests of the server's message type, answered with replies of the
// reply's type (which protobuf callers check); the bridge's $describe
// shows the remote types and schemas.
func TestServiceTypes(t *testing.T) {
	srv := natsServer(t, 0)
	a, b := colugotest.NewNetwork(t), colugotest.NewNetwork(t)
	ca := cfgFor(srv, "a")
	ca.Export.Services = []bridge.Service{{Name: "add"}, {Name: "add.pb"}}
	runBridge(t, a, ca)
	cb := cfgFor(srv, "b")
	cb.Import.Services = ca.Export.Services
	_, nb := runBridge(t, b, cb)
	server := a.NewNode("server")
	if _, err := colugo.Serve(server, "add", func(_ context.Context, r serverAdd) (sum, error) { return sum{r.A + r.B}, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(server, "add.pb", func(_ context.Context, r *posepb.AddRequest) (*posepb.AddReply, error) {
		return &posepb.AddReply{Sum: r.A + r.B}, nil
	}, colugo.WithCodec(protobuf.Codec{})); err != nil {
		t.Fatal(err)
	}
	cli := b.NewNode("client")
	wctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for _, s := range []string{"add", "add.pb"} {
		if err := cli.WaitServers(wctx, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := colugo.Request[clientAdd, sum](t.Context(), cli, "add", clientAdd{1, 2}); err != nil || got.Sum != 3 {
		t.Errorf("add: %+v, %v", got, err)
	}
	got, err := colugo.Request[*posepb.AddRequest, *posepb.AddReply](t.Context(), cli, "add.pb", &posepb.AddRequest{A: 2, B: 3}, colugo.WithCodec(protobuf.Codec{}))
	if err != nil || got.GetSum() != 5 {
		t.Errorf("add.pb: %v, %v", got, err)
	}
	for _, p := range cli.Peers() {
		if p.ID != nb.ID() {
			continue
		}
		for _, s := range p.Services {
			if s.Name == "add.pb" && (s.Type != "colugo.examples.AddRequest" || s.ReplyType != "colugo.examples.AddReply" || len(s.Schema) == 0 || len(s.ReplySchema) == 0) {
				t.Errorf("the bridge describes add.pb as %s → %s, schemas of %d and %d bytes", s.Type, s.ReplyType, len(s.Schema), len(s.ReplySchema))
			}
		}
	}
}
