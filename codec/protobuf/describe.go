package protobuf

import (
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/colugo-go/colugo/codec"
)

var _ codec.Describer = Codec{}

// Describe returns the serialized FileDescriptorSet (google.protobuf) of
// v's message type: its file and every file it imports, dependencies first.
// With it, tools decode and encode the messages without the generated code.
// v is what TypeName accepts.
func (c Codec) Describe(v any) ([]byte, error) {
	name := c.TypeName(v)
	if name == "" {
		return nil, unsupported("describe", v)
	}
	var md protoreflect.MessageDescriptor
	if m, ok := v.(proto.Message); ok && fullName(m) != "" {
		md = m.ProtoReflect().Descriptor()
	} else {
		mt, err := elemTypeOf(v)
		if err != nil {
			return nil, err
		}
		md = mt.Descriptor()
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(md.ParentFile())
	b, err := proto.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("colugo/codec/protobuf: describing %s: %w", name, err)
	}
	return b, nil
}

// elemTypeOf returns the message type of v, a typed nil message pointer or
// a pointer to a message pointer.
func elemTypeOf(v any) (protoreflect.MessageType, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return nil, unsupported("describe", v)
	}
	if rv.IsNil() {
		return zeroType(rv.Type())
	}
	return elemType(rv.Elem())
}
