package colugo

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
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
		{"[]byte from a typed codec", func() error { // colugo call: codec.Passthrough names the request's type
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

// namedRaw is codec.Passthrough with a type name.
type namedRaw struct{ name, typ string }

func (c namedRaw) Name() string                { return c.name }
func (c namedRaw) TypeName(any) string         { return c.typ }
func (namedRaw) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (namedRaw) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}
