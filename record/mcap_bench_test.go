package record

import (
	"io"
	"testing"
	"time"

	"github.com/foxglove/mcap/go/mcap"
)

// BenchmarkMCAPWrite compares this package's MCAP writer with the mcap
// module's (the one it replaced), same options: chunked, zstd fastest,
// CRCs, 4 MiB chunks, 256-byte messages on one channel.
func BenchmarkMCAPWrite(b *testing.B) {
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ch := &mcapChannel{ID: 1, Topic: "t", MessageEncoding: "raw", Metadata: map[string]string{MetaCodec: "raw"}}
	b.Run("own", func(b *testing.B) {
		w, err := newMCAPWriter(io.Discard, compressionZSTD, 4<<20, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := w.writeChannel(ch); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var i uint64
		for b.Loop() {
			i++
			if err := w.writeMessage(&mcapMessage{ChannelID: 1, Sequence: uint32(i), LogTime: i * uint64(time.Millisecond), PublishTime: i, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.close(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("mcap-module", func(b *testing.B) {
		w, err := mcap.NewWriter(io.Discard, &mcap.WriterOptions{IncludeCRC: true, Chunked: true, ChunkSize: 4 << 20,
			Compression: mcap.CompressionZSTD, CompressionLevel: mcap.CompressionLevelFastest})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.WriteHeader(&mcap.Header{Library: "bench"}); err != nil {
			b.Fatal(err)
		}
		if err := w.WriteChannel(&mcap.Channel{ID: 1, Topic: "t", MessageEncoding: "raw", Metadata: ch.Metadata}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var i uint64
		for b.Loop() {
			i++
			if err := w.WriteMessage(&mcap.Message{ChannelID: 1, Sequence: uint32(i), LogTime: i * uint64(time.Millisecond), PublishTime: i, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	})
}
