package wire_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/transport/wire"
)

func metaExt(kv ...string) string {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = wire.AppendMetadataEntry(b, kv[i], kv[i+1])
	}
	return string(b)
}

// TestExtNoneIsVersion1 checks that a header without extensions is the
// version 1 encoding: FlagExt clear and nothing after the error string.
func TestExtNoneIsVersion1(t *testing.T) {
	t.Parallel()
	for _, tt := range headers {
		h := tt.h
		h.Flags |= wire.FlagExt // ignored: Ext is empty
		got := h.Append(nil)
		want := tt.h.Append(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: FlagExt without Ext changes the encoding:\n% x\n% x", tt.name, got, want)
		}
		if got[2]&wire.FlagExt != 0 {
			t.Fatalf("%s: FlagExt set without extensions", tt.name)
		}
	}
}

func TestExtRoundTrip(t *testing.T) {
	t.Parallel()
	unknown := string(wire.AppendExt(nil, 99, "future field"))
	for _, ext := range []string{
		metaExt("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
		metaExt("a", "", "b", "2"),
		unknown + metaExt("k", "v"),
		string(wire.AppendExt(nil, wire.ExtSealMAC, strings.Repeat("m", 16))),
		string(wire.AppendExt(nil, 1<<40, "")),
	} {
		for _, tt := range headers {
			h := tt.h
			h.Ext = ext
			enc := h.Append(nil)
			if enc[2]&wire.FlagExt == 0 {
				t.Fatalf("%s: FlagExt clear with extensions", tt.name)
			}
			v1 := tt.h.Append(nil)
			if !bytes.HasPrefix(enc[4:], v1[4:]) || !bytes.Equal(enc[len(v1):], []byte(ext)) {
				t.Fatalf("%s: extensions are not the version 1 header followed by the block", tt.name)
			}
			got, err := wire.Decode(enc)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			for i := range enc {
				enc[i] = 'Z'
			}
			if got != h {
				t.Fatalf("%s: round trip:\n got %+v\nwant %+v", tt.name, got, h)
			}
			prev := got
			if again, err := wire.DecodeReuse(h.Append(nil), &prev); err != nil || again != h {
				t.Fatalf("%s: DecodeReuse: %+v, %v", tt.name, again, err)
			}
		}
	}
}

// TestExtSkipUnknown walks a block with an unknown type between two
// metadata entries: NextExt hands it over for the caller to skip.
func TestExtSkipUnknown(t *testing.T) {
	ext := metaExt("a", "1") + string(wire.AppendExt(nil, 77, "\xff\x00junk")) + metaExt("b", "2")
	var got []string
	for rest := ext; rest != ""; {
		typ, v, r, ok := wire.NextExt(rest)
		if !ok {
			t.Fatalf("NextExt failed on %q", rest)
		}
		rest = r
		if typ != wire.ExtMetadata {
			continue
		}
		k, val, ok := wire.MetadataEntry(v)
		if !ok {
			t.Fatalf("bad entry %q", v)
		}
		got = append(got, k+"="+val)
	}
	if strings.Join(got, ",") != "a=1,b=2" {
		t.Fatalf("got %v", got)
	}
	var keys int
	if n := testing.AllocsPerRun(100, func() {
		for rest := ext; rest != ""; {
			var v string
			_, v, rest, _ = wire.NextExt(rest)
			if k, _, ok := wire.MetadataEntry(v); ok {
				keys += len(k)
			}
		}
	}); n != 0 {
		t.Fatalf("walking the block allocates %v times", n)
	}
}

func TestExtMalformed(t *testing.T) {
	t.Parallel()
	base := wire.Header{Kind: wire.KindPublish, Codec: "json", Sender: "n"}
	v1 := base.Append(nil)
	flagged := func(tail ...byte) []byte {
		b := append(bytes.Clone(v1), tail...)
		b[2] |= wire.FlagExt
		return b
	}
	cases := map[string][]byte{
		"flag without entries": flagged(),
		"type cut short":       flagged(0x80),
		"no length":            flagged(1),
		"length cut short":     flagged(1, 0x80),
		"value past the end":   flagged(1, 5, 'a', 'b'),
		"second entry short":   flagged(1, 0, 2, 3, 'x'),
		"length overflows":     flagged(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"over MaxExt":          flagged(append([]byte{1, 0x80, 0x20}, make([]byte, wire.MaxExt)...)...),
	}
	for name, b := range cases {
		h, err := wire.Decode(b)
		checkWraps(t, err, wire.ErrExt)
		if h != (wire.Header{}) {
			t.Fatalf("%s: non-zero header %+v", name, h)
		}
	}
	// Without the flag, bytes after the header are still trailing bytes.
	_, err := wire.Decode(append(bytes.Clone(v1), 1, 0))
	checkWraps(t, err, wire.ErrTrailing)
}

// TestExtDecodeAllocs: a header with extensions costs one more allocation
// (the block), and none when there is none.
func TestExtDecodeAllocs(t *testing.T) {
	h := wire.Header{Kind: wire.KindPublish, Codec: "json", Type: "T", Sender: "node", Seq: 3, Ext: metaExt("k", "v")}
	enc := h.Append(nil)
	prev := h
	if n := testing.AllocsPerRun(100, func() { _, _ = wire.DecodeReuse(enc, &prev) }); n > 1 {
		t.Fatalf("DecodeReuse of a header with extensions: %v allocations, want at most 1", n)
	}
}
