package bridge

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/colugo-go/colugo"
)

// FuzzParseHeader checks that parseHeader never panics, and that the
// metadata of a header it accepts is metadata the library sends: its own
// bounds check (validMetadata) agrees with colugo.WithMetadata's, so that
// an accepted message is never refused at its local publish.
func FuzzParseHeader(f *testing.F) {
	f.Add("json", "int", "7", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x", "b1", 1)
	f.Add("", "", "x", "BAD", "v", "x", "", 1)
	f.Add("raw", "", "-1", "k.a-b_c", strings.Repeat("v", 1025), "site", "b", 16)
	f.Add("c", "t", "1e9", "colugo.bridge.origin", "forged", "s", "b", 2)
	f.Add("c", "t", "1", "k", "\xff", "s", "b", 1)
	f.Add("raw", "", "1", "k", "v", "site-a", "b1", 0) // no metadata fields: parseHeaderLast reuses
	f.Fuzz(func(t *testing.T, codecName, typ, seq, key, value, origin, bridgeID string, copies int) {
		h := nats.Header{}
		h.Set(hCodec, codecName)
		h.Set(hType, typ)
		h.Set(hSeq, seq)
		h.Set(hOrigin, origin)
		h.Set(hBridge, bridgeID)
		copies = min(max(copies, 0), 40)
		for i := range copies {
			k := key
			if i > 0 {
				k = key + strings.Repeat("x", i)
			}
			h[hMeta+k] = []string{value}
		}
		in, ok := parseHeader(h)
		// What a subscription's goroutine sees: the header after another
		// origin's and after its own (reusing last's), alike.
		last := lastOrigin{}
		if _, ok := parseHeaderLast(nats.Header{hCodec: {"raw"}, hOrigin: {"other"}, hBridge: {"b0"}}, &last); !ok {
			t.Fatal("refused a plain header")
		}
		for i := range 2 {
			in2, ok2 := parseHeaderLast(h, &last)
			if ok2 != ok || ok && (in2.codec != in.codec || in2.typ != in.typ || in2.origin != in.origin || !maps.Equal(in2.md, in.md)) {
				t.Fatalf("parseHeaderLast (%d) of %v: %+v, %v; parseHeader: %+v, %v", i, h, in2, ok2, in, ok)
			}
		}
		if !ok {
			return
		}
		if in.codec == "" || in.md[mdOrigin] != origin+" "+bridgeID {
			t.Fatalf("accepted %v as %+v", h, in)
		}
		if colugo.OutgoingMetadata(colugo.WithMetadata(context.Background(), in.md)) == nil {
			t.Fatalf("accepted metadata %v that colugo refuses", in.md)
		}
	})
}

// TestValidMetadata: validMetadata refuses what colugo refuses, at each
// bound.
func TestValidMetadata(t *testing.T) {
	many := colugo.Metadata{}
	for i := range colugo.MaxMetadataEntries + 1 {
		many[string(rune('a'+i))] = "v"
	}
	for _, md := range []colugo.Metadata{
		{"": "v"},
		{"K": "v"},
		{strings.Repeat("k", colugo.MaxMetadataKey+1): "v"},
		{"k": strings.Repeat("v", colugo.MaxMetadataValue+1)},
		{"k": "\xff"},
		{"a": strings.Repeat("v", 1000), "b": strings.Repeat("v", 1000), "c": strings.Repeat("v", 1000), "d": strings.Repeat("v", 100)},
		many,
	} {
		lib := colugo.OutgoingMetadata(colugo.WithMetadata(context.Background(), md)) != nil
		if got := validMetadata(md); got || lib {
			t.Errorf("%.60v: validMetadata %v, colugo accepts %v; want both false", md, got, lib)
		}
	}
	ok := colugo.Metadata{"traceparent": "00-x", strings.Repeat("k", colugo.MaxMetadataKey): strings.Repeat("v", colugo.MaxMetadataValue)}
	if !validMetadata(ok) {
		t.Errorf("validMetadata refuses %v", ok)
	}
}

// TestJetStreamErrorClipped: the last JetStream error Stats keeps (text a
// NATS server may send, bound for $describe) is cut to maxErrorText on a
// rune boundary.
func TestJetStreamErrorClipped(t *testing.T) {
	b := &Bridge{cfg: Config{Logger: slog.New(slog.DiscardHandler)}}
	b.jsFailed("import **: stream", errors.New(strings.Repeat("é", 100<<10)))
	got := *b.st.lastStreamError.Load()
	if len(got) > maxErrorText || !utf8.ValidString(got) || !strings.HasPrefix(got, "import **: stream: éé") || !strings.HasSuffix(got, "…") {
		t.Errorf("kept %d bytes (valid UTF-8 %v): %.40q…", len(got), utf8.ValidString(got), got)
	}
	if clip("short", 10) != "short" {
		t.Error("clip cut a short string")
	}
}
