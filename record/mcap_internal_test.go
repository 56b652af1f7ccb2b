package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/foxglove/mcap/go/mcap"
)

// TestMCAPWriterAgainstReference writes files in every compression, with
// chunks small enough that there are many, metadata between them and
// messages out of log-time order across channels, and reads them with the
// mcap module (the reference): its summary, its indexed reader in log-time
// order, its linear reader and its CRC-checking lexer; then with this
// package's Reader and Scan, which check the data and summary CRCs.
func TestMCAPWriterAgainstReference(t *testing.T) {
	t.Parallel()
	const n = 300
	for _, c := range []string{compressionZSTD, compressionLZ4, compressionNone} {
		t.Run(fmt.Sprintf("compression=%q", c), func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			w, err := NewWriter(&buf, WithCompression(c))
			if err != nil {
				t.Fatal(err)
			}
			w.w.chunkSize = 512
			t0 := time.Unix(1000, 0)
			for i := range n {
				topic := []string{"a", "b", "c"}[i%3]
				lt := t0.Add(time.Duration(i) * time.Millisecond)
				if topic == "c" {
					lt = lt.Add(-2 * time.Millisecond) // before the a and b around it
				}
				if err := w.Write(Message{Topic: topic, Codec: "json", Type: "main." + topic, LogTime: lt,
					Data: fmt.Appendf(nil, `{"i":%d}`, i)}); err != nil {
					t.Fatal(err)
				}
				if i == n/2 {
					if err := w.AddMetadata("middle", map[string]string{"k": "v", "a": "b"}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()

			r, err := mcap.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			info, err := r.Info()
			if err != nil {
				t.Fatal(err)
			}
			st := info.Statistics
			if st.MessageCount != n || st.ChannelCount != 3 || st.SchemaCount != 3 || st.MetadataCount != 1 ||
				st.ChunkCount < 10 || int(st.ChunkCount) != len(info.ChunkIndexes) || st.ChannelMessageCounts[1] != n/3 ||
				st.MessageStartTime != uint64(t0.UnixNano()) ||
				st.MessageEndTime != uint64(t0.Add((n-2)*time.Millisecond).UnixNano()) {
				t.Fatalf("statistics %+v, %d chunk indexes", st, len(info.ChunkIndexes))
			}
			if len(info.MetadataIndexes) != 1 || info.MetadataIndexes[0].Name != "middle" {
				t.Fatalf("metadata indexes %+v", info.MetadataIndexes)
			}
			md, err := r.GetMetadata(info.MetadataIndexes[0].Offset)
			if err != nil || md.Metadata["k"] != "v" || md.Metadata["a"] != "b" {
				t.Fatalf("metadata %+v, %v", md, err)
			}
			for _, ci := range info.ChunkIndexes {
				if string(ci.Compression) != c || len(ci.MessageIndexOffsets) == 0 || ci.MessageIndexLength == 0 {
					t.Fatalf("chunk index %+v", ci)
				}
			}
			r.Close()
			for _, useIndex := range []bool{true, false} {
				r, err := mcap.NewReader(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				order := mcap.LogTimeOrder
				if !useIndex {
					order = mcap.FileOrder
				}
				it, err := r.Messages(mcap.UsingIndex(useIndex), mcap.InOrder(order))
				if err != nil {
					t.Fatal(err)
				}
				got, last := 0, uint64(0)
				for {
					_, ch, m, err := it.NextInto(nil)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("index %v, after %d: %v", useIndex, got, err)
					}
					if useIndex && m.LogTime < last {
						t.Fatalf("log time goes back: %d after %d", m.LogTime, last)
					}
					last = m.LogTime
					if ch.Metadata[MetaCodec] != "json" || ch.Metadata[MetaType] != "main."+ch.Topic {
						t.Fatalf("channel %+v", ch)
					}
					got++
				}
				if got != n {
					t.Fatalf("index %v: %d messages", useIndex, got)
				}
				r.Close()
			}

			lex, err := mcap.NewLexer(bytes.NewReader(data), &mcap.LexerOptions{ValidateChunkCRCs: true, EmitChunks: false})
			if err != nil {
				t.Fatal(err)
			}
			tokens := map[mcap.TokenType]int{}
			for {
				tok, _, err := lex.Next(nil)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				tokens[tok]++
			}
			lex.Close()
			if tokens[mcap.TokenMessage] != n || tokens[mcap.TokenMessageIndex] < 10 || tokens[mcap.TokenDataEnd] != 1 ||
				tokens[mcap.TokenSummaryOffset] != 5 || tokens[mcap.TokenFooter] != 1 {
				t.Fatalf("tokens %v", tokens)
			}

			sum, err := Scan(bytes.NewReader(data))
			if err != nil || sum.Messages != n || sum.Counts["c"] != n/3 {
				t.Fatalf("Scan: %+v, %v", sum, err)
			}
			bad := bytes.Clone(data)
			bad[len(bad)/2] ^= 0x40
			if _, err := Scan(bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Scan of a flipped bit: %v", err)
			}
		})
	}
}
