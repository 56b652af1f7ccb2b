package colugo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/examples/posepb"
)

// Typed subscriptions fed hostile type names and payloads (fuzzed).

// asCodec sends bytes as they are under another codec's name and type
// name: a peer whose payloads claim to be JSON or protobuf.
type asCodec struct{ name, typ string }

func (c asCodec) Name() string                    { return c.name }
func (c asCodec) Marshal(v any) ([]byte, error)   { return codec.Raw{}.Marshal(v) }
func (c asCodec) Unmarshal(b []byte, v any) error { return codec.Raw{}.Unmarshal(b, v) }
func (c asCodec) TypeName(any) string             { return c.typ }
func (c asCodec) String() string                  { return "as " + c.name }

var _ codec.TypeNamer = asCodec{}

// FuzzSubscribeTyped publishes fuzzed payloads between two colugotest
// nodes under the json, protobuf and raw codec names, and checks what the
// typed subscriptions (Subscribe[Pose], Subscribe[*posepb.Pose],
// Subscribe[string]) do against an oracle, the codec called directly on a
// zero value: the same value is delivered when it decodes (so nothing of an
// earlier message leaks into a later one), else nothing is delivered and
// exactly one decode error is counted. Seeds are real encoded values.
func FuzzSubscribeTyped(f *testing.F) {
	for _, p := range []Pose{{}, {X: 1, Y: -2.5, Seq: 3}, {X: 1e308, Y: -1e-308, Seq: -1 << 62}} {
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	for _, p := range []*posepb.Pose{{}, {X: 1, Y: 2, Theta: 3, Frame: "map"}, {Frame: "base_link/🤖", Theta: -1e300}} {
		b, _ := proto.Marshal(p)
		f.Add(b)
	}
	for _, s := range []string{"", "null", `{"X":"1"}`, `{"Seq":1.5}`, `{"x":1,"X":2}`, "\xff", `{"X":1}trailing`, "\x0a\x02\xff\xfe", "\x80"} {
		f.Add([]byte(s))
	}
	pbName := protobuf.Codec{}.TypeName(&posepb.Pose{})
	net := colugotest.NewNetwork(f)
	a, b := net.NewNode("fuzz-pub"), net.NewNode("fuzz-sub")
	ctx := f.Context()
	jsonCh, err1 := colugo.Subscribe[Pose](ctx, b, "fz/json", colugo.WithBuffer(4))
	pbCh, err2 := colugo.Subscribe[*posepb.Pose](ctx, b, "fz/pb", colugo.WithCodec(protobuf.Codec{}), colugo.WithBuffer(4))
	rawCh, err3 := colugo.Subscribe[string](ctx, b, "fz/raw", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(4))
	jsonPub, err4 := colugo.NewPublisher[[]byte](a, "fz/json", colugo.WithCodec(asCodec{"json", ""}))
	pbPub, err5 := colugo.NewPublisher[[]byte](a, "fz/pb", colugo.WithCodec(asCodec{"protobuf", pbName}))
	rawPub, err6 := colugo.NewPublisher[[]byte](a, "fz/raw", colugo.WithCodec(codec.Raw{}))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		f.Fatal(err)
	}
	// Connect: publish valid values until each subscription has one.
	deadline := time.Now().Add(wait)
	for _, c := range []struct {
		pub  *colugo.Publisher[[]byte]
		v    []byte
		recv func() bool
	}{
		{jsonPub, []byte("{}"), func() bool { return len(jsonCh) > 0 }},
		{pbPub, nil, func() bool { return len(pbCh) > 0 }},
		{rawPub, nil, func() bool { return len(rawCh) > 0 }},
	} {
		for !c.recv() {
			if time.Now().After(deadline) {
				f.Fatal("fuzz subscriptions never connected")
			}
			_ = c.pub.Publish(ctx, c.v)
			runtime.Gosched()
		}
	}
	// The connecting publishes may still be on their way: send a marker on
	// each topic and read up to it, so that every channel starts empty.
	markerPB, _ := proto.Marshal(&posepb.Pose{Frame: "marker"})
	_ = jsonPub.Publish(ctx, []byte(`{"Seq":-12345}`))
	_ = pbPub.Publish(ctx, markerPB)
	_ = rawPub.Publish(ctx, []byte("marker"))
	for v := (Pose{}); v.Seq != -12345; v = colugotest.Next(f, jsonCh, wait) {
	}
	for v := (*posepb.Pose)(nil); v.GetFrame() != "marker"; v = colugotest.Next(f, pbCh, wait) {
	}
	for v := ""; v != "marker"; v = colugotest.Next(f, rawCh, wait) {
	}
	drain := func() {
		for len(jsonCh)+len(pbCh)+len(rawCh) > 0 {
			select {
			case <-jsonCh:
			case <-pbCh:
			case <-rawCh:
			}
		}
	}
	decodeErrors := func(topic string) uint64 { return b.Stats().Topics[topic].DecodeErrors }
	// await waits for a value on ch or for one more decode error of topic.
	await := func(t *testing.T, topic string, errs0 uint64, n func() int) bool {
		deadline := time.Now().Add(wait)
		for {
			if n() > 0 {
				return true
			}
			if decodeErrors(topic) > errs0 {
				return false
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: neither a value nor a decode error", topic)
			}
			runtime.Gosched()
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		drain()
		je, pe := decodeErrors("fz/json"), decodeErrors("fz/pb")
		for _, p := range []*colugo.Publisher[[]byte]{jsonPub, pbPub, rawPub} {
			if err := p.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
		}

		var wantJSON Pose
		jerr := codec.JSON{}.Unmarshal(data, &wantJSON)
		if got := await(t, "fz/json", je, func() int { return len(jsonCh) }); got != (jerr == nil) {
			t.Fatalf("json: delivered = %v, but the codec says %v", got, jerr)
		} else if got {
			if v := <-jsonCh; v != wantJSON {
				t.Fatalf("json: delivered %+v, the codec gives %+v", v, wantJSON)
			}
		} else if n := decodeErrors("fz/json") - je; n != 1 {
			t.Fatalf("json: %d decode errors counted, want 1", n)
		}

		var wantPB *posepb.Pose
		perr := protobuf.Codec{}.Unmarshal(data, &wantPB)
		if got := await(t, "fz/pb", pe, func() int { return len(pbCh) }); got != (perr == nil) {
			t.Fatalf("protobuf: delivered = %v, but the codec says %v", got, perr)
		} else if got {
			v := <-pbCh
			opt := proto.MarshalOptions{Deterministic: true}
			gb, _ := opt.Marshal(v)
			wb, _ := opt.Marshal(wantPB)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("protobuf: delivered %v, the codec gives %v", v, wantPB)
			}
		} else if n := decodeErrors("fz/pb") - pe; n != 1 {
			t.Fatalf("protobuf: %d decode errors counted, want 1", n)
		}

		if !await(t, "fz/raw", 0, func() int { return len(rawCh) }) {
			t.Fatal("raw: not delivered")
		}
		if v := <-rawCh; v != string(data) {
			t.Fatalf("raw: delivered %q, published %q", v, data)
		}
	})
}
