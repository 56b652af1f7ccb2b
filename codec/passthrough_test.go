package codec_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/colugo-go/colugo/codec"
)

func TestPassthrough(t *testing.T) {
	t.Parallel()
	c := codec.Passthrough("json", "")
	if _, ok := c.(codec.TypeNamer); ok {
		t.Fatal("untyped passthrough has a type name")
	}
	tc := codec.Passthrough("protobuf", "robot.Pose").(codec.TypeNamer)
	if tc.TypeName(nil) != "robot.Pose" {
		t.Fatal(tc.TypeName(nil))
	}
	var out []byte
	if err := c.Unmarshal([]byte("{}"), &out); err != nil || string(out) != "{}" {
		t.Fatal(out, err)
	}
	if _, err := c.Marshal(3); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatal(err)
	}
	if err := c.Unmarshal(nil, new(int)); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatal(err)
	}
}

// A passthrough codec moves bytes of any codec without decoding them: here
// the JSON a typed publisher's codec.JSON made, under the codec name json.
func ExamplePassthrough() {
	data, _ := codec.JSON{}.Marshal(struct{ X int }{X: 1})
	pt := codec.Passthrough("json", "main.Pose")
	var got []byte
	_ = pt.Unmarshal(data, &got)
	fmt.Println(pt.Name(), pt.(codec.TypeNamer).TypeName(got), string(got))
	// Output: json main.Pose {"X":1}
}
