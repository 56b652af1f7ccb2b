package colugo_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/colugo-go/colugo/internal/testwait"
)

type schemaPose struct {
	X, Y  float64
	Label string            `json:"label,omitempty"`
	Tags  map[string]string `json:"tags"`
}

type schemaReply struct {
	OK bool `json:"ok"`
}

// A JSON topic's and service's JSON Schema travels in $describe; a
// protobuf topic and a type encoding/json cannot encode carry none.
func TestJSONSchemaInDescribe(t *testing.T) {
	net := colugotest.NewNetwork(t)
	a, b := net.NewNode("a"), net.NewNode("b")
	if _, err := colugo.NewPublisher[schemaPose](a, "pose"); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.NewPublisher[*posepb.Pose](a, "pb", colugo.WithCodec(protobuf.Codec{})); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.NewPublisher[chan int](a, "chan"); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(a, "check", func(context.Context, schemaPose) (schemaReply, error) { return schemaReply{}, nil }); err != nil {
		t.Fatal(err)
	}
	var peer colugo.PeerInfo
	testwait.Until(t, "b to see a's topics and service", func() bool {
		for _, p := range b.Peers() {
			if p.Name == "a" && len(p.Topics) == 3 && len(p.Services) == 1 {
				peer = p
				return true
			}
		}
		return false
	})
	wantPose := `{"$schema":"https://json-schema.org/draft/2020-12/schema","$ref":"#/$defs/colugo_test.schemaPose","$defs":{"colugo_test.schemaPose":` +
		`{"type":"object","properties":{"X":{"type":"number"},"Y":{"type":"number"},"label":{"type":"string"},` +
		`"tags":{"type":["object","null"],"additionalProperties":{"type":"string"}}},"required":["X","Y","tags"],"additionalProperties":false}}}`
	for _, info := range peer.Topics {
		switch info.Name {
		case "pose":
			sameJSON(t, "pose", info.JSONSchema, wantPose)
		case "pb", "chan":
			if info.JSONSchema != nil {
				t.Errorf("%s: json_schema %s, want none", info.Name, info.JSONSchema)
			}
		}
	}
	svc := peer.Services[0]
	sameJSON(t, "check request", svc.JSONSchema, wantPose)
	sameJSON(t, "check reply", svc.ReplyJSONSchema, `{"$schema":"https://json-schema.org/draft/2020-12/schema","$ref":"#/$defs/colugo_test.schemaReply",`+
		`"$defs":{"colugo_test.schemaReply":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false}}}`)
}

func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: bad JSON %q: %v", what, got, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}
