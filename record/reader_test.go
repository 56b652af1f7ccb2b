package record_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/record"
	"github.com/colugo-go/colugo/transport/zmq"
)

// Crafted MCAP files: magic, records (opcode, little-endian u64 length,
// body), magic.

var magic = []byte{0x89, 'M', 'C', 'A', 'P', 0x30, '\r', '\n'}

func rec(op byte, body []byte) []byte {
	b := []byte{op}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(body)))
	return append(b, body...)
}

// claim is a record header claiming n bytes, followed by data.
func claim(op byte, n uint64, data []byte) []byte {
	return append(binary.LittleEndian.AppendUint64([]byte{op}, n), data...)
}

func str(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func headerRec() []byte { return rec(0x01, append(str(""), str("test")...)) }

// chunkRec is a chunk record that claims size bytes uncompressed and holds
// data compressed with compression.
func chunkRec(size uint64, crc uint32, compression string, data []byte) []byte {
	b := make([]byte, 16) // start and end time
	b = binary.LittleEndian.AppendUint64(b, size)
	b = binary.LittleEndian.AppendUint32(b, crc)
	b = append(b, str(compression)...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	return rec(0x06, append(b, data...))
}

func file(records ...[]byte) []byte {
	b := bytes.Clone(magic)
	for _, r := range records {
		b = append(b, r...)
	}
	return b
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// allocated returns the bytes f allocates (all goroutines: call it from a
// test that is not parallel, so that none of the package's other tests run).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReaderBoundsMemory: lengths a file claims cost no memory unless the
// file holds the bytes, and a chunk is never decompressed past its claim
// or the limit. (mcap's lexer allocated every claim up front, a chunk's
// twice over: a crafted file of a few hundred KB took a GiB.)
func TestReaderBoundsMemory(t *testing.T) {
	zeros := zstdOf(t, make([]byte, 2<<20)) // 2 MiB of zeros in a few hundred bytes
	crcZeros := crc32.ChecksumIEEE(make([]byte, 2<<20))
	for _, tc := range []struct {
		name string
		file []byte
		opts []record.ReadOption
		want string // in the error
	}{
		{"chunk claiming 1 GiB", file(headerRec(), chunkRec(1<<30, 0, "zstd", zeros)), nil, "more than the reader's limit"},
		{"chunk claiming 60 MiB, holding 2", file(headerRec(), chunkRec(60<<20, 0, "zstd", zeros)), nil, "claiming 62914560 bytes: it decompresses to 2097152"},
		{"chunk claiming 1 MiB, holding 2", file(headerRec(), chunkRec(1<<20, 0, "zstd", zeros)), nil, "it decompresses to more"},
		{"2 MiB chunk, limit 1 MiB", file(headerRec(), chunkRec(2<<20, crcZeros, "zstd", zeros)), []record.ReadOption{record.WithMaxRecordSize(1 << 20)}, "limit of 1048576"},
		{"uncompressed chunk claiming 60 MiB", file(headerRec(), chunkRec(60<<20, 0, "", []byte("abc"))), nil, "claims 62914560"},
		{"message claiming 60 MiB, holding 50 bytes", file(headerRec(), claim(0x05, 60<<20, make([]byte, 50))), nil, "record of 62914560 bytes"},
		{"schema claiming 60 MiB", file(headerRec(), claim(0x03, 60<<20, []byte("x"))), nil, "record of 62914560 bytes"},
		{"message claiming 2^63", file(headerRec(), claim(0x05, 1<<63, nil)), nil, "more than the reader's limit"},
		{"skipped record claiming 2^63", file(headerRec(), claim(0x08, 1<<63, nil)), nil, "longer than any file"},
		{"message in a chunk claiming 60 MiB", file(headerRec(), chunkRec(9+3, 0, "", claim(0x05, 60<<20, []byte("abc")))), nil, "claims 62914560 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			// Not a ReadSeeker: Scan skips the footer's CRC checks and lexes.
			n := allocated(func() { _, err = record.Scan(struct{ io.Reader }{bytes.NewReader(tc.file)}, tc.opts...) })
			if !errors.Is(err, record.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Scan: %v, want ErrCorrupt with %q", err, tc.want)
			}
			// What it holds (2 MiB decompressed at most) and the decoder's
			// window; not what the file claims.
			if n > 12<<20 {
				t.Fatalf("Scan of a %d-byte file allocated %d MiB", len(tc.file), n>>20)
			}
			t.Logf("%v; %d KiB allocated", err, n>>10)
		})
	}
	// The same 2 MiB chunk with a true claim is decompressed and lexed (its
	// zeros are not records).
	if _, err := record.Scan(struct{ io.Reader }{bytes.NewReader(file(headerRec(), chunkRec(2<<20, crcZeros, "zstd", zeros)))}); err == nil || !strings.Contains(err.Error(), "opcode 0 in a chunk") {
		t.Fatalf("2 MiB of zeros as records: %v", err)
	}
}

// TestMaxRecordSize: what the default admits (a message larger than a
// chunk) and the option that lowers or raises it.
func TestMaxRecordSize(t *testing.T) {
	t.Parallel()
	// The default covers a Writer's 4 MiB chunk closed by one more message
	// as large as the transport's default frame limit.
	if record.DefaultMaxRecordSize < 4<<20+zmq.DefaultMaxFrameSize+1<<20 {
		t.Fatalf("DefaultMaxRecordSize %d is below a Writer's largest chunk", record.DefaultMaxRecordSize)
	}
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16) // 6 MiB: more than a chunk
	for i := range 3 {
		if err := w.Write(record.Message{Topic: "big", Codec: "raw", LogTime: time.Unix(int64(i), 0), Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if sum, err := record.Scan(bytes.NewReader(buf.Bytes())); err != nil || sum.Messages != 3 {
		t.Fatalf("default limit: %+v %v", sum, err)
	}
	if _, err := record.Scan(bytes.NewReader(buf.Bytes()), record.WithMaxRecordSize(1<<20)); !errors.Is(err, record.ErrCorrupt) || !strings.Contains(err.Error(), "WithMaxRecordSize") {
		t.Fatalf("1 MiB limit: %v", err)
	}
	node := colugotest.NewNode(t, "player")
	if _, err := record.Play(t.Context(), node, bytes.NewReader(buf.Bytes()), record.Rate(0), record.WithMaxRecordSize(1<<20)); !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("Play with a 1 MiB limit: %v", err)
	}
	if p, err := record.Play(t.Context(), node, bytes.NewReader(buf.Bytes()), record.Rate(0), record.WithMaxRecordSize(16<<20)); err != nil || p.Messages != 3 {
		t.Fatalf("Play with a 16 MiB limit: %+v %v", p, err)
	}
	if _, err := record.NewReader(bytes.NewReader(buf.Bytes()), record.WithMaxRecordSize(0)); !errors.Is(err, colugo.ErrInvalidOption) {
		t.Fatalf("limit 0: %v", err)
	}
}

// TestOpenRefusesNonRegular: a FIFO (whose open would wait for a writer)
// or a directory is an error at once.
func TestOpenRefusesNonRegular(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.mcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := record.Open(fifo)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "a FIFO, not a regular file") {
			t.Fatalf("FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the open by opening the write end, so the test ends.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatal("Open of a FIFO blocked")
	}
	if _, err := record.Open(dir); err == nil || !strings.Contains(err.Error(), "a directory") {
		t.Fatalf("directory: %v", err)
	}
	path := filepath.Join(dir, "rec.mcap")
	if err := os.WriteFile(path, writeSample(t, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sum, err := record.Scan(f); err != nil || sum.Messages != 6 {
		t.Fatalf("regular file: %+v %v", sum, err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		t.Fatal(err)
	}
}
