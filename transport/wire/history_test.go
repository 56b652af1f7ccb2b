package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/transport/wire"
)

func TestHistoryRequestRoundTrip(t *testing.T) {
	for _, r := range []wire.HistoryRequest{
		{Topic: "robot/description", Max: 1},
		{Topic: "t", Max: wire.MaxHistoryRequest, After: 1<<64 - 1},
		{Topic: strings.Repeat("x", wire.MaxName), Max: 300, After: 12345},
	} {
		got, err := wire.DecodeHistoryRequest(wire.AppendHistoryRequest(nil, r))
		if err != nil || got != r {
			t.Errorf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
}

func TestHistoryRequestRefused(t *testing.T) {
	ok := wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "t", Max: 1})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version 2":      append([]byte{2}, ok[1:]...),
		"max 0":          wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "t", Max: 0}),
		"max too large":  wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "t", Max: wire.MaxHistoryRequest + 1}),
		"no topic":       wire.AppendHistoryRequest(nil, wire.HistoryRequest{Max: 1}),
		"NUL in topic":   wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "a\x00b", Max: 1}),
		"topic too long": wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: strings.Repeat("x", wire.MaxName+1), Max: 1}),
		"truncated max":  {1, 0x80},
		"bad utf-8":      wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "\xff", Max: 1}),
	} {
		if _, err := wire.DecodeHistoryRequest(b); !errors.Is(err, wire.ErrHistory) {
			t.Errorf("%s: %v, want ErrHistory", name, err)
		}
	}
}

func historyReply(more bool, entries ...wire.HistoryEntry) []byte {
	b := wire.AppendHistoryReplyStart(nil, more, 7, 99)
	for i := range entries {
		b = wire.AppendHistoryEntry(b, &entries[i].Header, entries[i].Payload)
	}
	return b
}

func TestHistoryReplyRoundTrip(t *testing.T) {
	long := strings.Repeat("e", 200) // a header over 127 bytes: a two-byte length
	entries := []wire.HistoryEntry{
		{Header: wire.Header{Kind: wire.KindPublish, Codec: "json", Type: "int", Sender: "s", Seq: 3, SendTime: 42,
			Ext: string(wire.AppendExt(nil, wire.ExtReplayed, ""))}, Payload: []byte("3")},
		{Header: wire.Header{Kind: wire.KindPublish, Codec: "raw", Type: long, Sender: "s", Seq: 4, SendTime: -1}, Payload: bytes.Repeat([]byte{9}, 300)},
		{Header: wire.Header{Kind: wire.KindPublish, Sender: "s", Seq: 5}, Payload: nil},
	}
	r, err := wire.DecodeHistoryReply(historyReply(true, entries...))
	if err != nil {
		t.Fatal(err)
	}
	if !r.More || r.Depth != 7 || r.Latest != 99 || len(r.Entries) != len(entries) {
		t.Fatalf("decoded %+v", r)
	}
	for i, e := range r.Entries {
		if e.Header != entries[i].Header || !bytes.Equal(e.Payload, entries[i].Payload) {
			t.Errorf("entry %d: %+v, want %+v", i, e, entries[i])
		}
	}
	empty, err := wire.DecodeHistoryReply(wire.AppendHistoryReplyStart(nil, false, 0, 0))
	if err != nil || empty.More || len(empty.Entries) != 0 {
		t.Fatalf("empty reply: %+v, %v", empty, err)
	}
}

func TestHistoryReplyRefused(t *testing.T) {
	good := historyReply(false, wire.HistoryEntry{Header: wire.Header{Kind: wire.KindPublish, Sender: "s", Seq: 1}, Payload: []byte("x")})
	request := wire.Header{Kind: wire.KindRequest, Sender: "s", Seq: 1}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"unknown flag":     append([]byte{2}, good[1:]...),
		"truncated entry":  good[:len(good)-1],
		"trailing byte":    append(bytes.Clone(good), 5),
		"not a publish":    historyReply(false, wire.HistoryEntry{Header: request}),
		"bad entry header": append(wire.AppendHistoryReplyStart(nil, false, 1, 1), 3, 0xC1, 1, 0),
		"huge length":      append(wire.AppendHistoryReplyStart(nil, false, 1, 1), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := wire.DecodeHistoryReply(b); !errors.Is(err, wire.ErrHistory) {
			t.Errorf("%s: %v, want ErrHistory", name, err)
		}
	}
}

// FuzzDecodeHistory checks that the history decoders never panic, and
// that what they accept encodes back to an equal value.
func FuzzDecodeHistory(f *testing.F) {
	f.Add(wire.AppendHistoryRequest(nil, wire.HistoryRequest{Topic: "t", Max: 3, After: 9}))
	f.Add(historyReply(true, wire.HistoryEntry{Header: wire.Header{Kind: wire.KindPublish, Codec: "json", Sender: "s", Seq: 2}, Payload: []byte("{}")}))
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{1, 1, 1, 't'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := wire.DecodeHistoryRequest(b); err == nil {
			if again, err := wire.DecodeHistoryRequest(wire.AppendHistoryRequest(nil, r)); err != nil || again != r {
				t.Fatalf("request %+v re-decodes as %+v, %v", r, again, err)
			}
		}
		r, err := wire.DecodeHistoryReply(b)
		if err != nil {
			return
		}
		enc := wire.AppendHistoryReplyStart(nil, r.More, r.Depth, r.Latest)
		for i := range r.Entries {
			enc = wire.AppendHistoryEntry(enc, &r.Entries[i].Header, r.Entries[i].Payload)
		}
		again, err := wire.DecodeHistoryReply(enc)
		if err != nil || again.More != r.More || len(again.Entries) != len(r.Entries) {
			t.Fatalf("reply %+v re-decodes as %+v, %v", r, again, err)
		}
		for i := range r.Entries {
			if again.Entries[i].Header != r.Entries[i].Header || !bytes.Equal(again.Entries[i].Payload, r.Entries[i].Payload) {
				t.Fatalf("entry %d changed: %+v -> %+v", i, r.Entries[i], again.Entries[i])
			}
		}
	})
}
