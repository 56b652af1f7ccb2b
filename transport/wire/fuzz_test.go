package wire_test

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/colugo-go/colugo/transport/wire"
)

// FuzzDecodeHeader checks that Decode never panics, that every error wraps
// exactly one sentinel, and the round trip: if Decode(b) gives h, then
// Decode(h.Append(nil)) gives h again, and that encoding is stable and no
// longer than b.
func FuzzDecodeHeader(f *testing.F) {
	for _, tt := range headers {
		enc := tt.h.Append(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(append(bytes.Clone(enc), 0))
	}
	for _, ext := range []string{metaExt("traceparent", "00-aa-bb-01"), string(wire.AppendExt(nil, 200, "x"))} {
		h := headers[0].h
		h.Ext = ext
		enc := h.Append(nil)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0xC1})
	f.Add([]byte{0xC1, 0, 0, 0})
	f.Add([]byte{0xC2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xC1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0xC1, 1, 0, 0, 0x84, 0x00, 'j', 's', 'o', 'n', 0, 0, 0x81, 0x00, 0, 0, 0, 0})
	f.Add([]byte("garbage that is not a header at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := wire.Decode(b)
		if err != nil {
			if got := wrapped(err); len(got) != 1 || got[0] == wire.ErrName {
				t.Fatalf("error %q wraps %v, want exactly one header sentinel", err, got)
			}
			if h != (wire.Header{}) {
				t.Fatalf("error %v with a non-zero header %+v", err, h)
			}
			return
		}
		if len(b) > wire.MaxHeader {
			t.Fatalf("decoded a %d-byte header, MaxHeader is %d", len(b), wire.MaxHeader)
		}
		if h.Flags&wire.FlagExt != 0 {
			t.Fatalf("decoded Flags hold FlagExt: %+v", h)
		}
		for rest, n := h.Ext, 0; rest != ""; n++ {
			var ok bool
			if _, _, rest, ok = wire.NextExt(rest); !ok || n > len(h.Ext) {
				t.Fatalf("Decode accepted an extension block NextExt cannot walk: %q", h.Ext)
			}
		}
		enc := h.Append(nil)
		if len(enc) > len(b) {
			t.Fatalf("re-encoding is %d bytes, longer than the %d decoded", len(enc), len(b))
		}
		h2, err := wire.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Append(h)) of %+v: %v", h, err)
		}
		if h2 != h {
			t.Fatalf("round trip:\n got %+v\nwant %+v", h2, h)
		}
		if enc2 := h2.Append(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding:\n% x\n% x", enc, enc2)
		}
	})
}

// FuzzParseName checks ParseName against an oracle written from its
// documentation, and the round trip with AppendName and CheckName.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"", "\x00", "robot/pose\x00", "robot/pose", "a\x00b\x00", "_\x00", "/\x00",
		"🤖/pose\x00", "\xff\x00", "\xc0\x80\x00", "🤖"[:3] + "\x00", string(bytes.Repeat([]byte("a"), 255)) + "\x00",
		string(bytes.Repeat([]byte("a"), 256)) + "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		name, err := wire.ParseName(frame)
		n := len(frame) - 1
		valid := n >= 1 && n <= wire.MaxName && frame[n] == 0 &&
			bytes.IndexByte(frame[:n], 0) < 0 && utf8.Valid(frame[:n])
		if valid != (err == nil) {
			t.Fatalf("ParseName(%q) error = %v, oracle says valid = %v", frame, err, valid)
		}
		if err != nil {
			if got := wrapped(err); len(got) != 1 || got[0] != wire.ErrName {
				t.Fatalf("error %q wraps %v, want ErrName", err, got)
			}
			if name != "" {
				t.Fatalf("ParseName(%q) = %q with an error", frame, name)
			}
			if n >= 0 && frame[n] == 0 {
				if wire.CheckName(string(frame[:n])) == nil {
					t.Fatalf("CheckName accepts %q but ParseName refuses its frame", frame[:n])
				}
			}
			return
		}
		if err := wire.CheckName(name); err != nil {
			t.Fatalf("ParseName accepted %q but CheckName says %v", name, err)
		}
		if again := wire.AppendName(nil, name); !bytes.Equal(again, frame) {
			t.Fatalf("AppendName(ParseName(%q)) = %q", frame, again)
		}
	})
}

// FuzzDecodeReuse checks DecodeReuse, whose fast path reads headers whose
// strings repeat the previous header's, against Decode: the same header or
// an error for every input, whatever the previous header was.
func FuzzDecodeReuse(f *testing.F) {
	for _, tt := range headers {
		enc := tt.h.Append(nil)
		f.Add(enc, 0)
		f.Add(enc, 1)
		f.Add(enc[:len(enc)-1], 0)
		f.Add(append(bytes.Clone(enc), 0), 1)
	}
	prevs := make([]wire.Header, 0, len(headers)+1)
	for _, tt := range headers {
		prevs = append(prevs, tt.h)
	}
	prevs = append(prevs, wire.Header{})
	f.Fuzz(func(t *testing.T, b []byte, which int) {
		prev := prevs[uint(which)%uint(len(prevs))]
		want, wantErr := wire.Decode(b)
		got, err := wire.DecodeReuse(b, &prev)
		if (err == nil) != (wantErr == nil) || got != want {
			t.Fatalf("DecodeReuse after %+v:\n got %+v, %v\nwant %+v, %v", prev, got, err, want, wantErr)
		}
	})
}
