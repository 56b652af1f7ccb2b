package bridge

import (
	"fmt"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

// replyBytes is an imported service's reply: a type of its own, so that
// the service codec can tell requests and replies apart (colugo asks a
// codec for the type name and schema of a zero Req and of a zero Resp).
type replyBytes []byte

// svcCodec carries an imported service's payloads unchanged under the
// remote service's codec name, as codec.Passthrough does, and describes
// requests and replies with the remote server's schemas.
type svcCodec struct {
	name                   string
	reqSchema, replySchema []byte
}

// strictSvcCodec is svcCodec for codecs whose type names are an identity
// (protobuf): it names requests and replies with the remote server's
// types, which strict callers check.
type strictSvcCodec struct {
	svcCodec
	reqType, replyType string
}

var (
	_ codec.Describer = svcCodec{}
	_ codec.TypeNamer = strictSvcCodec{}
)

// serviceCodec returns the codec with which the bridge serves an imported
// service described by info. colugo's JSON and Raw have no type identity:
// the bridge must not refuse a caller whose type has another name. Every
// other codec is taken to have one (as protobuf does), so that its callers
// get replies of the type name they expect.
func serviceCodec(info colugo.TopicInfo) codec.Codec {
	c := svcCodec{name: info.Codec, reqSchema: info.Schema, replySchema: info.ReplySchema}
	if info.Codec == (codec.JSON{}).Name() || info.Codec == (codec.Raw{}).Name() {
		return c
	}
	return strictSvcCodec{c, info.Type, info.ReplyType}
}

func (c svcCodec) Name() string { return c.name }

func (c svcCodec) Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case replyBytes:
		return v, nil
	case []byte:
		return v, nil
	}
	return nil, fmt.Errorf("%w: bridge service codec %s takes bytes, not %T", codec.ErrUnsupportedType, c.name, v)
}

func (c svcCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok && b != nil {
		*b = append((*b)[:0:0], data...)
		return nil
	}
	return fmt.Errorf("%w: bridge service codec %s decodes into a *[]byte, not %T", codec.ErrUnsupportedType, c.name, v)
}

// Describe gives the remote server's schemas (nil when it has none).
func (c svcCodec) Describe(v any) ([]byte, error) {
	if _, reply := v.(replyBytes); reply {
		return c.replySchema, nil
	}
	return c.reqSchema, nil
}

func (c strictSvcCodec) TypeName(v any) string {
	if _, reply := v.(replyBytes); reply {
		return c.replyType
	}
	return c.reqType
}
