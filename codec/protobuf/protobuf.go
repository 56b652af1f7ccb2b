package protobuf

import (
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/colugo-go/colugo/codec"
)

var (
	_ codec.Codec     = Codec{}
	_ codec.TypeNamer = Codec{}
)

var messageInterface = reflect.TypeFor[proto.Message]()

// Codec encodes protobuf messages in the binary wire format, with the
// default [proto.MarshalOptions] and [proto.UnmarshalOptions]. Its zero
// value is ready to use and it is safe for concurrent use.
type Codec struct{}

// Name returns "protobuf".
func (Codec) Name() string { return "protobuf" }

// Marshal encodes v, which must be a [proto.Message] such as a *posepb.Pose
// (a nil *posepb.Pose encodes as the empty message), or a pointer to a
// non-nil one such as a **posepb.Pose. Any other v gives an error wrapping
// [codec.ErrUnsupportedType].
func (Codec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer || rv.IsNil() || !rv.Elem().Type().Implements(messageInterface) || isNil(rv.Elem()) {
			return nil, unsupported("Marshal", v)
		}
		m = rv.Elem().Interface().(proto.Message)
	}
	if isNil(reflect.ValueOf(m)) {
		return nil, nil // a nil message pointer: the empty message
	}
	b, err := proto.MarshalOptions{}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("colugo/codec/protobuf: marshal %s: %w", fullName(m), err)
	}
	return b, nil
}

// Unmarshal decodes data into v, which is one of:
//   - a pointer to a message pointer, such as a **posepb.Pose: Unmarshal
//     allocates a fresh message of that type, decodes into it and, only if
//     decoding succeeds, stores it in *v (whatever *v held before is left
//     untouched, so received values never alias);
//   - a non-nil message pointer, such as a *posepb.Pose, which is reset and
//     decoded into in place;
//   - a pointer to a non-nil proto.Message interface value: a fresh message
//     of the dynamic type is stored in it.
//
// Malformed data gives an error, never a panic. Any other v gives an error
// wrapping [codec.ErrUnsupportedType].
func (Codec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		if isNil(reflect.ValueOf(m)) {
			return fmt.Errorf("%w: protobuf codec cannot decode into a nil %T", codec.ErrUnsupportedType, v)
		}
		if err := (proto.UnmarshalOptions{}).Unmarshal(data, m); err != nil {
			return fmt.Errorf("colugo/codec/protobuf: unmarshal %s: %w", fullName(m), err)
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || !rv.Elem().Type().Implements(messageInterface) {
		return unsupported("Unmarshal", v)
	}
	elem := rv.Elem()
	mt, err := elemType(elem)
	if err != nil {
		return err
	}
	fresh := mt.New().Interface()
	if !reflect.TypeOf(fresh).AssignableTo(elem.Type()) {
		return fmt.Errorf("%w: %s makes %T, which does not fit in %s", codec.ErrUnsupportedType, mt.Descriptor().FullName(), fresh, elem.Type())
	}
	if err := (proto.UnmarshalOptions{}).Unmarshal(data, fresh); err != nil {
		return fmt.Errorf("colugo/codec/protobuf: unmarshal %s: %w", mt.Descriptor().FullName(), err)
	}
	elem.Set(reflect.ValueOf(fresh))
	return nil
}

// TypeName returns the full name of v's message type, such as
// "colugo.examples.Pose". v may be a message, a typed nil message pointer
// such as (*posepb.Pose)(nil), or a pointer to a message pointer such as a
// **posepb.Pose (nil or not). For any other v it returns "".
func (Codec) TypeName(v any) string {
	if m, ok := v.(proto.Message); ok {
		return fullName(m)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || !rv.Type().Elem().Implements(messageInterface) {
		return ""
	}
	var mt protoreflect.MessageType
	var err error
	if rv.IsNil() {
		mt, err = zeroType(rv.Type().Elem())
	} else {
		mt, err = elemType(rv.Elem())
	}
	if err != nil {
		return ""
	}
	return string(mt.Descriptor().FullName())
}

// elemType returns the message type of elem, a settable value whose type
// implements proto.Message: a message pointer (nil or not) or a non-nil
// proto.Message interface value.
func elemType(elem reflect.Value) (protoreflect.MessageType, error) {
	if !isNil(elem) {
		return elem.Interface().(proto.Message).ProtoReflect().Type(), nil
	}
	if elem.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("%w: protobuf codec cannot tell the message type of a nil %s", codec.ErrUnsupportedType, elem.Type())
	}
	return zeroType(elem.Type())
}

// zeroType returns the message type of the message pointer type t from its
// nil value. Generated messages describe themselves when nil; a type that
// panics instead (dynamicpb.Message does) gives an error.
func zeroType(t reflect.Type) (mt protoreflect.MessageType, err error) {
	defer func() {
		if recover() != nil || (err == nil && mt == nil) {
			mt, err = nil, fmt.Errorf("%w: protobuf codec cannot tell the message type of a nil %s", codec.ErrUnsupportedType, t)
		}
	}()
	if t.Kind() != reflect.Pointer {
		return nil, nil
	}
	return reflect.Zero(t).Interface().(proto.Message).ProtoReflect().Type(), nil
}

// fullName returns m's full message name, or "" where m cannot tell it
// (a nil m, or a nil pointer of a type that panics when nil).
func fullName(m proto.Message) (name string) {
	if m == nil {
		return ""
	}
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	return string(m.ProtoReflect().Descriptor().FullName())
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func unsupported(op string, v any) error {
	return fmt.Errorf("%w: protobuf codec %s takes a proto.Message or a pointer to one, not %T", codec.ErrUnsupportedType, op, v)
}
