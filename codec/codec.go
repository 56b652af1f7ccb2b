// Package codec defines how colugo turns typed values into payload bytes,
// and provides JSON (the default) and Raw. Protobuf lives in codec/protobuf
// so that programs that do not use it do not link it.
//
// A codec's name travels in every message header. A subscriber or server
// refuses a message whose codec name differs from its own
// (colugo.ErrCodecMismatch) instead of decoding garbage.
package codec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Codec marshals values to payloads and back. Implementations must be safe
// for concurrent use.
type Codec interface {
	// Name identifies the codec on the wire, e.g. "json". At most 64 bytes.
	Name() string
	// Marshal encodes v. The result may alias v (Raw does); callers do not
	// modify it.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to. It must not keep
	// data after it returns unless it copied it.
	Unmarshal(data []byte, v any) error
}

// TypeNamer is implemented by codecs whose type names are a real identity,
// such as protobuf's full message names. For such codecs a receiver also
// refuses a message whose type name differs from its own. For other codecs
// the type name is information for tools, not a gate.
type TypeNamer interface {
	TypeName(v any) string
}

// Describer is implemented by codecs that can describe a type's schema in
// bytes, so that tools decode messages without the program's types:
// protobuf returns a serialized FileDescriptorSet. The schema travels in
// $describe (TopicInfo.Schema).
type Describer interface {
	Describe(v any) ([]byte, error)
}

// ErrUnsupportedType is returned by a codec given a value it cannot handle.
var ErrUnsupportedType = errors.New("colugo/codec: unsupported type")

var (
	_ Codec = JSON{}
	_ Codec = Raw{}
)

// JSON encodes with encoding/json. It is the default codec.
type JSON struct{}

// Name returns "json".
func (JSON) Name() string { return "json" }

// Marshal encodes v as JSON. A type JSON cannot encode (a channel, a
// function, a complex number) gives an error wrapping [ErrUnsupportedType]
// and the *json.UnsupportedTypeError.
func (JSON) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	var ute *json.UnsupportedTypeError
	if errors.As(err, &ute) {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedType, err)
	}
	return b, err
}

// Unmarshal decodes JSON into v. A v that is not a non-nil pointer gives an
// error wrapping [ErrUnsupportedType] and the *json.InvalidUnmarshalError.
func (JSON) Unmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	var iue *json.InvalidUnmarshalError
	if errors.As(err, &iue) {
		return fmt.Errorf("%w: %w", ErrUnsupportedType, err)
	}
	return err
}

// Raw passes bytes through unchanged: T must be []byte or string. Marshal
// does not copy a []byte; Unmarshal always copies, so a received value never
// aliases a buffer that another subscriber also sees.
type Raw struct{}

// Name returns "raw".
func (Raw) Name() string { return "raw" }

// Marshal returns v's bytes: v must be []byte, string, or a non-nil *[]byte
// or *string. Anything else gives an error wrapping [ErrUnsupportedType].
func (Raw) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	case *[]byte:
		if v != nil {
			return *v, nil
		}
	case *string:
		if v != nil {
			return []byte(*v), nil
		}
	}
	return nil, fmt.Errorf("%w: raw codec takes []byte, string or a non-nil pointer to one, not %T", ErrUnsupportedType, v)
}

// Unmarshal copies data into v: v must be a non-nil *[]byte or *string.
// Anything else gives an error wrapping [ErrUnsupportedType].
func (Raw) Unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case *[]byte:
		if v != nil {
			*v = append([]byte(nil), data...)
			return nil
		}
	case *string:
		if v != nil {
			*v = string(data)
			return nil
		}
	}
	return fmt.Errorf("%w: raw codec decodes into a non-nil *[]byte or *string, not %T", ErrUnsupportedType, v)
}
