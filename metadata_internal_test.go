package colugo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/wire"
)

// With a network key, the header extensions are authenticated: a message
// whose metadata is altered, forged, stripped of its MAC or moved to
// another message fails to open; the intact one opens with its metadata.
func TestSealedMetadataAuthenticated(t *testing.T) {
	n, err := NewNode("n", WithTransport(inproc.NewNetwork().New()), WithDiscovery(discovery.Static()),
		WithKey([]byte("0123456789abcdef0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ext, err := encodeMetadata(Metadata{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	sealed := func(ext string, payload string) *transport.Message {
		seq++
		msg := &transport.Message{Name: "t", Header: wire.Header{Kind: transport.KindPublish, Codec: "json",
			Type: "string", Sender: "someone", Seq: seq, SendTime: time.Now().UnixNano(), Ext: ext}, Payload: []byte(payload)}
		n.sealMsg(msg, binding{})
		return msg
	}
	open := func(msg *transport.Message) error {
		m := *msg
		m.Payload = append([]byte(nil), msg.Payload...)
		m.Exclusive = true
		err := n.openMsg(&m, binding{})
		if err == nil || !errors.Is(err, ErrUnauthenticated) {
			return err
		}
		return err
	}
	n.guard.Describe("someone", map[string]uint64{"t": 0}) // so that only the seal can refuse
	good := sealed(ext, `"hi"`)
	if !strings.HasPrefix(good.Header.Ext, ext) || len(good.Header.Ext) == len(ext) {
		t.Fatalf("sealed ext %q does not end with a MAC after %q", good.Header.Ext, ext)
	}
	other, _ := encodeMetadata(Metadata{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203332-01"})
	cases := map[string]func(m *transport.Message){
		"value altered": func(m *transport.Message) {
			b := []byte(m.Header.Ext)
			b[len(ext)-2] ^= 1
			m.Header.Ext = string(b)
		},
		"forged without MAC": func(m *transport.Message) { m.Header.Ext = other },
		"entry added": func(m *transport.Message) {
			m.Header.Ext = string(wire.AppendMetadataEntry([]byte(nil), "x", "y")) + m.Header.Ext
		},
		"moved to another message": func(m *transport.Message) {
			m.Header.Ext = sealed(other, `"hi"`).Header.Ext // its MAC, with that message's tag
			m.Header.Ext = ext + m.Header.Ext[len(other):]
		},
	}
	// Each refusal counts once (each case is a fresh message: no replay).
	before := n.authFailures.Load()
	for name, f := range cases {
		m := sealed(ext, `"hi"`)
		f(m)
		if err := open(m); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: open = %v, want ErrUnauthenticated", name, err)
		}
	}
	if got := n.authFailures.Load() - before; got != uint64(len(cases)) {
		t.Errorf("AuthFailures grew by %d, want %d", got, len(cases))
	}
	m := *good
	m.Payload = append([]byte(nil), good.Payload...)
	if err := n.openMsg(&m, binding{}); err != nil {
		t.Fatalf("intact message: %v", err)
	}
	if md := decodeMetadata(m.Header.Ext); md["traceparent"] == "" || m.Header.Ext != ext {
		t.Fatalf("opened ext %q, metadata %v", m.Header.Ext, md)
	}
	// Stripped of the whole block (a peer that does not decode extensions
	// gets it so): it opens, without metadata.
	m = *sealed(ext, `"hi"`)
	m.Header.Ext = ""
	if err := n.openMsg(&m, binding{}); err != nil {
		t.Fatalf("stripped message: %v", err)
	}
}

func TestMetadataBounds(t *testing.T) {
	t.Parallel()
	many := Metadata{}
	for i := range MaxMetadataEntries + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i/26+1)] = "v"
	}
	big := Metadata{}
	for i := range 4 {
		big[string(rune('a'+i))] = strings.Repeat("v", MaxMetadataValue)
	}
	for name, md := range map[string]Metadata{
		"too many":       many,
		"empty key":      {"": "v"},
		"upper case":     {"Trace": "v"},
		"long key":       {strings.Repeat("k", MaxMetadataKey+1): "v"},
		"long value":     {"k": strings.Repeat("v", MaxMetadataValue+1)},
		"not utf-8":      {"k": "\xff"},
		"too many bytes": big,
	} {
		if _, err := encodeMetadata(md); !errors.Is(err, ErrInvalidMetadata) {
			t.Errorf("%s: err = %v, want ErrInvalidMetadata", name, err)
		}
	}
	ok := Metadata{strings.Repeat("k", MaxMetadataKey): strings.Repeat("v", MaxMetadataValue), "traceparent": "x"}
	ext, err := encodeMetadata(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeMetadata(ext); len(got) != 2 || got["traceparent"] != "x" {
		t.Fatalf("round trip: %v", got)
	}
}
