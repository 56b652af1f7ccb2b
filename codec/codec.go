// Package codec defines how colugo turns typed values into payload bytes,
// and provides JSON (the default) and Raw. Protobuf lives in codec/protobuf
// so that programs that do not use it do not link it.
//
// A codec's name travels in every message header. A subscriber or server
// refuses a message whose codec name differs from its own
// (colugo.ErrCodecMismatch) instead of decoding garbage.
package codec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	fastjson "github.com/segmentio/encoding/json"
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

// JSON is the default codec: its output is encoding/json's, byte for
// byte (field names and tags, omitempty, sorted map keys, HTML escaping,
// MarshalJSON and MarshalText methods), and it accepts and refuses what
// encoding/json does, decoding to the same values. It encodes and decodes
// with github.com/segmentio/encoding/json, a drop-in replacement several
// times faster at decoding that allocates less, wherever that library
// behaves like encoding/json, and with encoding/json elsewhere:
//   - values whose types have MarshalJSON, MarshalText, UnmarshalJSON or
//     UnmarshalText methods (time.Time, json.RawMessage, big.Int, net.IP...)
//     or omitzero tags, values to encode whose types could hold a cycle
//     (recursive types, interfaces), and values to decode that hold arrays,
//     json.Number or, on 32-bit platforms, int or uint, take encoding/json,
//     whole;
//   - a document nested deeper than 32 arrays and objects decodes with
//     encoding/json, which refuses more than 10000 levels and
//     takes time linear in the input however it nests.
type JSON struct{}

// fastDepth is the deepest nesting of arrays and objects that
// JSON.Unmarshal decodes with the fast library; deeper documents decode
// with encoding/json (see [JSON]).
const fastDepth = 32

// Name returns "json".
func (JSON) Name() string { return "json" }

// Marshal encodes v as JSON. A type JSON cannot encode (a channel, a
// function, a complex number) gives an error wrapping [ErrUnsupportedType]
// and the *json.UnsupportedTypeError.
func (JSON) Marshal(v any) ([]byte, error) {
	var b []byte
	var err error
	if fastEncodes(reflect.TypeOf(v)) {
		b, err = fastjson.Marshal(v)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return nil, marshalError(err)
	}
	return b, nil
}

// marshalError wraps an unsupported type's error with ErrUnsupportedType.
// (Apart from Marshal, so that a successful call does not allocate the
// pointer errors.As fills.)
func marshalError(err error) error {
	var ute *json.UnsupportedTypeError
	if errors.As(err, &ute) {
		return fmt.Errorf("%w: %w", ErrUnsupportedType, err)
	}
	return err
}

// Unmarshal decodes JSON into v. A v that is not a non-nil pointer gives an
// error wrapping [ErrUnsupportedType] and the *json.InvalidUnmarshalError.
// Strings and byte slices in v never alias data.
func (JSON) Unmarshal(data []byte, v any) error {
	var err error
	if deeper(data, fastDepth) || !fastDecodes(reflect.TypeOf(v)) {
		err = json.Unmarshal(data, v)
	} else {
		err = fastjson.Unmarshal(data, v)
	}
	if err != nil {
		return unmarshalError(err)
	}
	return nil
}

// unmarshalError wraps a bad target's error with ErrUnsupportedType.
func unmarshalError(err error) error {
	var iue *json.InvalidUnmarshalError
	if errors.As(err, &iue) {
		return fmt.Errorf("%w: %w", ErrUnsupportedType, err)
	}
	return err
}

// Where the fast library and encoding/json differ (found by the
// differential tests and fuzzing), the type goes to encoding/json. Every
// type's answer is worked out once and cached: a walk of its type graph.
var fastEnc, fastDec typeCache

// typeCache maps types to answers: a map replaced on each addition, so
// that the lookups on every message take no lock and cost a map read (a
// program has a bounded set of types).
type typeCache struct {
	m  atomic.Pointer[map[reflect.Type]bool]
	mu sync.Mutex
}

func (c *typeCache) get(t reflect.Type, decode bool) bool {
	if m := c.m.Load(); m != nil {
		if ok, found := (*m)[t]; found {
			return ok
		}
	}
	ok := typeWalk{decode: decode, onPath: map[reflect.Type]bool{}}.fast(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	m := make(map[reflect.Type]bool, 1)
	if old != nil {
		m = maps.Clone(*old)
	}
	m[t] = ok
	c.m.Store(&m)
	return ok
}

// fastEncodes reports whether values of type t encode with the fast
// library. They do not when t's type graph is recursive or holds an
// interface (a value could then hold a cycle, which that library follows
// until the stack overflows), has MarshalJSON or MarshalText methods (the
// library refuses output that encoding/json compacts, and treats string
// map keys with MarshalText and times outside years 0-9999 differently),
// omitzero tags (encoding/json's alone), or channels, functions or complex
// numbers (errors).
func fastEncodes(t reflect.Type) bool {
	if t == nil {
		return true // null
	}
	return fastEnc.get(t, false)
}

// fastDecodes reports whether values of type t (a pointer) decode with the
// fast library. They do not when t's type graph holds UnmarshalJSON or
// UnmarshalText methods, arrays (the library refuses fewer elements than
// the length), json.Number (it refuses a quoted number), interfaces with
// methods, omitzero tags, channels, functions or complex numbers, nor,
// on 32-bit platforms, int, uint or uintptr, nor when it recurses other
// than through a struct. A recursive struct is fine: [deeper] bounds how
// deep decoding goes.
func fastDecodes(t reflect.Type) bool {
	if t == nil {
		return true // an error either way
	}
	return fastDec.get(t, true)
}

var (
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonNumber      = reflect.TypeFor[json.Number]()
)

// typeWalk walks a type graph for fastEncodes or fastDecodes; onPath holds
// the types being walked.
type typeWalk struct {
	decode bool
	onPath map[reflect.Type]bool
}

func (w typeWalk) fast(t reflect.Type) bool {
	if w.onPath[t] { // a recursive type: values may be cyclic
		// The library decodes recursive structs, but recursion through
		// map or slice types alone overflows its stack building a decoder.
		return w.decode && t.Kind() == reflect.Struct
	}
	if t.Kind() != reflect.Interface {
		if w.implements(t) || w.implements(reflect.PointerTo(t)) {
			return false
		}
	}
	w.onPath[t] = true
	defer delete(w.onPath, t)
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	case reflect.Int, reflect.Uint, reflect.Uintptr:
		// On 32-bit platforms the library decodes a number too large for
		// an int without an error.
		return !w.decode || strconv.IntSize == 64
	case reflect.String:
		return !w.decode || t != jsonNumber
	case reflect.Interface:
		return w.decode && t.NumMethod() == 0
	case reflect.Array:
		return !w.decode && w.fast(t.Elem())
	case reflect.Pointer, reflect.Slice:
		return w.fast(t.Elem())
	case reflect.Map:
		return w.fast(t.Key()) && w.fast(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if strings.Contains(f.Tag.Get("json"), "omitzero") || !w.fast(f.Type) {
				return false
			}
		}
		return true
	default: // channels, functions, complex numbers, unsafe pointers
		return false
	}
}

// implements reports whether t has the methods that the walk's direction
// leaves to encoding/json.
func (w typeWalk) implements(t reflect.Type) bool {
	if w.decode {
		return t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler)
	}
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler)
}

// deeper reports whether the JSON text data nests arrays and objects more
// than max levels deep. It first counts brackets and braces, which is cheap
// and settles the common case; only data with more than max of them is
// scanned, minding strings.
func deeper(data []byte, max int) bool {
	if bytes.Count(data, openBracket)+bytes.Count(data, openBrace) <= max {
		return false
	}
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

var openBracket, openBrace = []byte{'['}, []byte{'{'}

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
