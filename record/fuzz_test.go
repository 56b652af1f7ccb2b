package record_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/colugo-go/colugo/record"
)

// FuzzReader: whatever the bytes, NewReader, Next and Scan end with a
// message stream, io.EOF or an error wrapping ErrCorrupt; never a panic, a
// hang or an allocation a file does not pay for (the limit is 1 MiB here).
// Seeds: files from the Writer in each compression, and crafted ones.
func FuzzReader(f *testing.F) {
	for _, c := range []string{"zstd", "lz4", "none"} {
		var buf bytes.Buffer
		w, err := record.NewWriter(&buf, record.WithCompression(c))
		if err != nil {
			f.Fatal(err)
		}
		for i := range 5 {
			if err := w.Write(record.Message{Topic: "a", Codec: "json", Type: "main.T", LogTime: time.Unix(int64(i), 0), Data: []byte(`{"X":1}`)}); err != nil {
				f.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	zeros := zstdOf(f, make([]byte, 64<<10))
	f.Add(file(headerRec(), chunkRec(1<<30, 0, "zstd", zeros)))
	f.Add(file(headerRec(), chunkRec(1<<10, 0, "zstd", zeros)))
	f.Add(file(headerRec(), chunkRec(12, 0, "", claim(0x05, 60<<20, []byte("abc")))))
	f.Add(file(headerRec(), claim(0x05, 60<<20, make([]byte, 50))))
	f.Add(file(headerRec(), claim(0x08, 1<<63, nil)))
	f.Add(magic)
	f.Fuzz(func(t *testing.T, b []byte) {
		limit := record.WithMaxRecordSize(1 << 20)
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("%s: %v does not wrap ErrCorrupt", what, err)
			}
		}
		rd, err := record.NewReader(bytes.NewReader(b), limit)
		check("NewReader", err)
		if err == nil {
			for {
				_, ch, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				check("Next", err)
				if err != nil {
					break
				}
				if ch == nil {
					t.Fatal("a message without its channel")
				}
			}
			rd.Close()
		}
		_, err = record.Scan(bytes.NewReader(b), limit)
		check("Scan", err)
	})
}
