package wire_test

import (
	"testing"

	"github.com/colugo-go/colugo/transport/wire"
)

var benchHeaders = []struct {
	name string
	h    wire.Header
}{
	{"publish", wire.Header{Kind: wire.KindPublish, Codec: "json", Type: "main.Pose", Sender: "3f2a9c1e7b5d4e60", Seq: 123456, SendTime: 1_764_000_000_123_456_789}},
	{"request", wire.Header{Kind: wire.KindRequest, Codec: "protobuf", Type: "colugo.examples.AddRequest", Sender: "3f2a9c1e7b5d4e60", Seq: 9, SendTime: 1_764_000_000_123_456_789, RequestID: 77, Deadline: 5_000_000_000}},
	{"reply_error", wire.Header{Kind: wire.KindReply, Status: 2, Codec: "json", Type: "main.AddResp", Sender: "3f2a9c1e7b5d4e60", RequestID: 77, Error: "handler: division by zero"}},
	{"cancel", wire.Header{Kind: wire.KindCancel, Codec: "json", RequestID: 77}},
}

func BenchmarkHeaderAppend(b *testing.B) {
	for _, bb := range benchHeaders {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, wire.MaxHeader)
			for b.Loop() {
				buf = bb.h.Append(buf[:0])
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bb := range benchHeaders {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			enc := bb.h.Append(nil)
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := wire.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseName(b *testing.B) {
	b.ReportAllocs()
	frame := wire.AppendName(nil, "robot/pose")
	for b.Loop() {
		if _, err := wire.ParseName(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeReuse is a connection reader's case: the headers of one
// publisher's stream, each decoded with the previous one at hand.
func BenchmarkDecodeReuse(b *testing.B) {
	b.ReportAllocs()
	h := benchHeaders[0].h
	var encs [][]byte
	for i := range 64 {
		h.Seq, h.SendTime = uint64(1000+i), h.SendTime+int64(i)*1000
		encs = append(encs, h.Append(nil))
	}
	b.SetBytes(int64(len(encs[0])))
	var prev wire.Header
	i := 0
	for b.Loop() {
		got, err := wire.DecodeReuse(encs[i%len(encs)], &prev)
		if err != nil {
			b.Fatal(err)
		}
		prev = got
		i++
	}
}
