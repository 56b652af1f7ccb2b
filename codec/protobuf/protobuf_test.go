package protobuf_test

import (
	"errors"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/examples/posepb"
)

func TestName(t *testing.T) {
	t.Parallel()
	if got := (protobuf.Codec{}).Name(); got != "protobuf" {
		t.Fatalf("Name() = %q, want protobuf", got)
	}
}

func TestRoundTripDoublePointer(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	tests := []struct {
		name string
		in   *posepb.Pose
	}{
		{"all fields", &posepb.Pose{X: 1.5, Y: -2.25, Theta: 3.14159, Frame: "map"}},
		{"zero", &posepb.Pose{}},
		{"utf8 frame", &posepb.Pose{Frame: "base_link/🤖"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := c.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var out *posepb.Pose // T = *posepb.Pose, decoded through a **T
			if err := c.Unmarshal(data, &out); err != nil {
				t.Fatal(err)
			}
			if out == nil || !proto.Equal(out, tt.in) {
				t.Fatalf("got %v, want %v", out, tt.in)
			}
			if out == tt.in {
				t.Fatal("decoded message aliases the encoded one")
			}
		})
	}
}

func TestUnmarshalAllocatesFresh(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	data, err := c.Marshal(&posepb.Pose{X: 7})
	if err != nil {
		t.Fatal(err)
	}
	old := &posepb.Pose{Y: 9, Frame: "old"}
	p := old
	if err := c.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if p == old {
		t.Fatal("Unmarshal into a **T reused the message *v pointed to")
	}
	if old.GetY() != 9 || old.GetFrame() != "old" {
		t.Fatalf("Unmarshal changed the old message: %v", old)
	}
	if p.GetX() != 7 || p.GetY() != 0 || p.GetFrame() != "" {
		t.Fatalf("got %v, want x:7 only", p)
	}
}

func TestUnmarshalDirect(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	data, err := c.Marshal(&posepb.AddRequest{A: 40, B: 2})
	if err != nil {
		t.Fatal(err)
	}
	req := &posepb.AddRequest{A: 1, B: 1}
	if err := c.Unmarshal(data, req); err != nil {
		t.Fatal(err)
	}
	if req.GetA() != 40 || req.GetB() != 2 {
		t.Fatalf("got %v", req)
	}

	// Into a proto.Message interface holding a message: a fresh one of that type.
	var m proto.Message = &posepb.AddRequest{}
	held := m
	if err := c.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m == held || !proto.Equal(m, &posepb.AddRequest{A: 40, B: 2}) {
		t.Fatalf("got %v (same pointer: %v)", m, m == held)
	}
}

func TestMarshalForms(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	want, err := c.Marshal(&posepb.AddReply{Sum: 42})
	if err != nil {
		t.Fatal(err)
	}
	p := &posepb.AddReply{Sum: 42}
	got, err := c.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("Marshal(**T) = %x, want %x", got, want)
	}
	// A nil message pointer is the empty message.
	empty, err := c.Marshal((*posepb.AddReply)(nil))
	if err != nil || len(empty) != 0 {
		t.Fatalf("Marshal(nil *AddReply) = %x, %v; want empty, nil", empty, err)
	}
	var r *posepb.AddReply
	if err := c.Unmarshal(empty, &r); err != nil || r == nil || r.GetSum() != 0 {
		t.Fatalf("Unmarshal(empty) = %v, %v", r, err)
	}
}

func TestUnsupported(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	type plain struct{ X int }
	var nilPose *posepb.Pose
	var nilIface proto.Message
	var nilDyn *dynamicpb.Message

	marshal := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"struct", plain{X: 1}},
		{"struct pointer", &plain{X: 1}},
		{"string", "x"},
		{"bytes", []byte("x")},
		{"nil **T", (**posepb.Pose)(nil)},
		{"pointer to nil interface", &nilIface},
	}
	for _, tt := range marshal {
		t.Run("Marshal/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := c.Marshal(tt.v); !errors.Is(err, codec.ErrUnsupportedType) {
				t.Fatalf("Marshal(%T) error = %v, want ErrUnsupportedType", tt.v, err)
			}
		})
	}

	unmarshal := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"struct", plain{}},
		{"struct pointer", &plain{}},
		{"typed nil message", nilPose},
		{"nil **T", (**posepb.Pose)(nil)},
		{"pointer to nil interface", &nilIface},
		{"nil dynamic message", nilDyn},
		{"pointer to nil dynamic message", &nilDyn},
	}
	for _, tt := range unmarshal {
		t.Run("Unmarshal/"+tt.name, func(t *testing.T) {
			t.Parallel()
			if err := c.Unmarshal(nil, tt.v); !errors.Is(err, codec.ErrUnsupportedType) {
				t.Fatalf("Unmarshal(%T) error = %v, want ErrUnsupportedType", tt.v, err)
			}
		})
	}
}

func TestDynamicMessage(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	desc := (&posepb.Pose{}).ProtoReflect().Descriptor()
	data, err := c.Marshal(&posepb.Pose{X: 3, Frame: "odom"})
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamicpb.NewMessage(desc)
	held := dyn
	if err := c.Unmarshal(data, &dyn); err != nil {
		t.Fatal(err)
	}
	if dyn == held {
		t.Fatal("Unmarshal into **dynamicpb.Message reused the old message")
	}
	if got := c.TypeName(dyn); got != "colugo.examples.Pose" {
		t.Fatalf("TypeName(dynamic) = %q", got)
	}
	back, err := c.Marshal(dyn)
	if err != nil {
		t.Fatal(err)
	}
	var p *posepb.Pose
	if err := c.Unmarshal(back, &p); err != nil {
		t.Fatal(err)
	}
	if p.GetX() != 3 || p.GetFrame() != "odom" {
		t.Fatalf("got %v", p)
	}
	var nilDyn *dynamicpb.Message
	if got := c.TypeName(nilDyn); got != "" {
		t.Fatalf("TypeName(nil *dynamicpb.Message) = %q, want empty", got)
	}
	if got := c.TypeName(&nilDyn); got != "" {
		t.Fatalf("TypeName(**dynamicpb.Message to nil) = %q, want empty", got)
	}
	if b, err := c.Marshal(nilDyn); err != nil || len(b) != 0 {
		t.Fatalf("Marshal(nil *dynamicpb.Message) = %x, %v", b, err)
	}
}

func TestTypeName(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	pose := &posepb.Pose{X: 1}
	var nilPose *posepb.Pose
	var m proto.Message = &posepb.AddReply{}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"message", pose, "colugo.examples.Pose"},
		{"typed nil", nilPose, "colugo.examples.Pose"},
		{"typed nil literal", (*posepb.AddRequest)(nil), "colugo.examples.AddRequest"},
		{"double pointer", &pose, "colugo.examples.Pose"},
		{"double pointer to nil", &nilPose, "colugo.examples.Pose"},
		{"nil double pointer", (**posepb.AddReply)(nil), "colugo.examples.AddReply"},
		{"pointer to interface", &m, "colugo.examples.AddReply"},
		{"nil", nil, ""},
		{"struct", struct{}{}, ""},
		{"string", "colugo.examples.Pose", ""},
		{"triple pointer", func() any { p := &pose; return &p }(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.TypeName(tt.v); got != tt.want {
				t.Fatalf("TypeName(%T) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated varint tag", []byte{0x80}},
		{"truncated fixed64", []byte{0x09, 1, 2, 3}},
		{"string length past end", []byte{0x22, 0x10, 'a'}},
		{"invalid utf8 string", []byte{0x22, 0x02, 0xff, 0xfe}},
		{"field number zero", []byte{0x00, 0x01}},
		{"end group without start", []byte{0x0c}},
		{"overlong varint", []byte{0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &posepb.Pose{Frame: "keep"}
			before := p
			if err := c.Unmarshal(tt.data, &p); err == nil {
				t.Fatalf("Unmarshal(%x) succeeded: %v", tt.data, p)
			} else if errors.Is(err, codec.ErrUnsupportedType) {
				t.Fatalf("Unmarshal(%x) error %v wraps ErrUnsupportedType", tt.data, err)
			}
			if p != before {
				t.Fatal("a failed Unmarshal replaced *v")
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := protobuf.Codec{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := &posepb.Pose{X: float64(g), Y: float64(i), Frame: "f"}
				data, err := c.Marshal(in)
				if err != nil {
					t.Error(err)
					return
				}
				var out *posepb.Pose
				if err := c.Unmarshal(data, &out); err != nil {
					t.Error(err)
					return
				}
				if !proto.Equal(in, out) || c.TypeName(&out) != "colugo.examples.Pose" {
					t.Errorf("got %v, want %v", out, in)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDescribe(t *testing.T) {
	for _, v := range []any{&posepb.Pose{}, (*posepb.Pose)(nil), new(*posepb.Pose)} {
		b, err := protobuf.Codec{}.Describe(v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(b, &set); err != nil {
			t.Fatal(err)
		}
		files, err := protodesc.NewFiles(&set)
		if err != nil {
			t.Fatalf("descriptor set does not stand alone: %v", err)
		}
		d, err := files.FindDescriptorByName("colugo.examples.Pose")
		if err != nil {
			t.Fatal(err)
		}
		// A tool decodes a Pose with nothing but the set.
		msg := dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
		wire, _ := proto.Marshal(&posepb.Pose{X: 1.5, Frame: "map"})
		if err := proto.Unmarshal(wire, msg); err != nil {
			t.Fatal(err)
		}
		if got := msg.Get(d.(protoreflect.MessageDescriptor).Fields().ByName("frame")).String(); got != "map" {
			t.Fatalf("frame = %q", got)
		}
	}
	if _, err := (protobuf.Codec{}).Describe(42); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatalf("Describe(42): %v", err)
	}
}
