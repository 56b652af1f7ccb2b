package codec

import "fmt"

// Passthrough returns a codec that carries payloads of any colugo codec
// unchanged, as []byte values, under the codec name name: subscribing with
// Passthrough("json", "") receives the JSON bytes that publishers with
// [JSON] sent, and publishing with Passthrough("json", "main.Pose")
// sends bytes that subscribers with [JSON] decode into their own type.
// Programs that move messages without knowing their types use it: the
// colugo command, recorders and players (package record), gateways and
// bridges.
//
// With typ == "", the codec has no type identity: a subscription accepts
// messages of any type name. With typ != "" it implements [TypeNamer]
// and gives typ as the type name of everything it publishes or requests,
// which receivers with strict type names (protobuf) check.
//
// Marshal takes []byte or string; Unmarshal decodes into *[]byte (copying).
func Passthrough(name, typ string) Codec {
	if typ == "" {
		return passthrough{name: name}
	}
	return typedPassthrough{passthrough{name: name}, typ}
}

// PassthroughSchema is Passthrough(name, typ) that also describes its type
// with schema ([Describer]): a publisher or server using it advertises
// schema in $describe (colugo.TopicInfo.Schema), as one using the original codec
// would, so tools can decode what it sends. For protobuf, schema is the
// serialized FileDescriptorSet of typ. With an empty schema it is
// Passthrough.
func PassthroughSchema(name, typ string, schema []byte) Codec {
	if len(schema) == 0 || typ == "" {
		return Passthrough(name, typ)
	}
	return describedPassthrough{typedPassthrough{passthrough{name: name}, typ}, schema}
}

type describedPassthrough struct {
	typedPassthrough
	schema []byte
}

var _ Describer = describedPassthrough{}

// Describe returns the schema, whatever v is: every value of a
// passthrough codec has its one type.
func (d describedPassthrough) Describe(any) ([]byte, error) { return d.schema, nil }

type passthrough struct{ name string }

type typedPassthrough struct {
	passthrough
	typ string
}

var (
	_ Codec     = passthrough{}
	_ TypeNamer = typedPassthrough{}
)

func (p passthrough) Name() string { return p.name }

func (p passthrough) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	}
	return nil, fmt.Errorf("%w: passthrough codec %s takes []byte or string, not %T", ErrUnsupportedType, p.name, v)
}

func (p passthrough) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok && b != nil {
		*b = append((*b)[:0:0], data...)
		return nil
	}
	return fmt.Errorf("%w: passthrough codec %s decodes into a non-nil *[]byte, not %T", ErrUnsupportedType, p.name, v)
}

func (t typedPassthrough) TypeName(any) string { return t.typ }
