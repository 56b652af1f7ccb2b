package protobuf_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/examples/posepb"
)

// FuzzProtobufUnmarshal checks that no input makes Unmarshal panic, and that
// whatever decodes re-encodes to bytes that decode to an equal message.
func FuzzProtobufUnmarshal(f *testing.F) {
	c := protobuf.Codec{}
	for _, m := range []*posepb.Pose{
		{},
		{X: 1, Y: 2, Theta: 3, Frame: "map"},
		{X: -1e300, Theta: 1e-300, Frame: "base_link/🤖"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x80})                               // truncated tag
	f.Add([]byte{0x22, 0x02, 0xff, 0xfe})             // invalid UTF-8 frame
	f.Add([]byte{0x2a, 0x03, 'a', 'b', 'c'})          // unknown field 5
	f.Add([]byte{0x0b, 0x0c})                         // empty group, field 1
	f.Add([]byte{0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}) // x = NaN
	f.Fuzz(func(t *testing.T, data []byte) {
		var p *posepb.Pose
		if err := c.Unmarshal(data, &p); err != nil {
			if p != nil {
				t.Fatalf("failed Unmarshal set *v: %v", p)
			}
			return
		}
		again, err := c.Marshal(p)
		if err != nil {
			t.Fatalf("re-marshal of a decoded message: %v", err)
		}
		var q *posepb.Pose
		if err := c.Unmarshal(again, &q); err != nil {
			t.Fatalf("decode of re-marshalled %x: %v", again, err)
		}
		if !proto.Equal(p, q) {
			t.Fatalf("round trip changed the message: %v != %v", p, q)
		}
	})
}
