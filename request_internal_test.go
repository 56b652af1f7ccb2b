package colugo

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport/inproc"
)

// TestDecodeReplyTypes: which reply type names a caller accepts. A reply
// without a type (an older or foreign server) is refused where types are
// an identity, taken where they are not.
func TestDecodeReplyTypes(t *testing.T) {
	t.Parallel()
	pbBytes, err := proto.Marshal(wrapperspb.String("x"))
	if err != nil {
		t.Fatal(err)
	}
	pb := protobuf.Codec{}
	for _, tc := range []struct {
		name string
		call func() error
		ok   bool
	}{
		{"protobuf right type", func() error {
			_, err := decodeReply[*wrapperspb.StringValue](pb, "s", "protobuf", "google.protobuf.StringValue", pbBytes, false)
			return err
		}, true},
		{"protobuf wrong type", func() error {
			_, err := decodeReply[*wrapperspb.BytesValue](pb, "s", "protobuf", "google.protobuf.StringValue", pbBytes, false)
			return err
		}, false},
		{"protobuf no type", func() error {
			_, err := decodeReply[*wrapperspb.StringValue](pb, "s", "protobuf", "", pbBytes, false)
			return err
		}, false},
		{"json no type", func() error {
			_, err := decodeReply[string](codec.JSON{}, "s", "json", "", []byte(`"x"`), false)
			return err
		}, true},
		{"json other type", func() error {
			_, err := decodeReply[string](codec.JSON{}, "s", "json", "main.Name", []byte(`"x"`), false)
			return err
		}, true},
		{"[]byte from a typed codec", func() error { // colugo call: record.Passthrough names the request's type
			_, err := decodeReply[[]byte](namedRaw{"protobuf", "google.protobuf.BytesValue"}, "s", "protobuf", "google.protobuf.StringValue", pbBytes, false)
			return err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call()
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrCodecMismatch) {
				t.Fatalf("err = %v, want ErrCodecMismatch", err)
			}
		})
	}
}

// namedRaw is record.Passthrough with a type name (record imports colugo).
type namedRaw struct{ name, typ string }

func (c namedRaw) Name() string                { return c.name }
func (c namedRaw) TypeName(any) string         { return c.typ }
func (namedRaw) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (namedRaw) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}

// TestPickTargetNoNodeLock: once a service's servers are known, picking
// one takes no node-wide lock, so requests do not queue behind whatever
// holds the node's mutex (discovery, $describe, a catalog change).
func TestPickTargetNoNodeLock(t *testing.T) {
	node, err := NewNode("n", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if _, err := Serve(node, "svc", func(_ context.Context, x int) (int, error) { return x, nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := node.pickTarget(ctx, "svc", true); err != nil { // learns the servers
		t.Fatal(err)
	}
	node.mu.Lock()
	picked := make(chan error, 1)
	go func() {
		_, err := node.pickTarget(ctx, "svc", true)
		picked <- err
	}()
	select {
	case err := <-picked:
		node.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		node.mu.Unlock()
		<-picked
		t.Fatal("pickTarget waited for the node's mutex")
	}
	// A change of services empties the rotations: a closed server is not picked.
	srv2, err := Serve(node, "svc2", func(_ context.Context, x int) (int, error) { return x, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.pickTarget(ctx, "svc2", true); err != nil {
		t.Fatal(err)
	}
	_ = srv2.Close()
	if _, err := node.pickTarget(ctx, "svc2", true); err == nil {
		t.Fatal("a closed server was still picked")
	}
}
