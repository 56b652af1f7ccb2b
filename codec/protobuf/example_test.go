package protobuf_test

import (
	"fmt"

	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/examples/posepb"
)

func ExampleCodec() {
	var c protobuf.Codec
	data, err := c.Marshal(&posepb.Pose{X: 1.5, Y: -2, Theta: 0.25, Frame: "map"})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The typed layer decodes a *posepb.Pose through a **posepb.Pose.
	var p *posepb.Pose
	if err := c.Unmarshal(data, &p); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name(), c.TypeName(p))
	fmt.Println(p.GetX(), p.GetY(), p.GetTheta(), p.GetFrame())
	// Output:
	// protobuf colugo.examples.Pose
	// 1.5 -2 0.25 map
}
