package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/transport/wire"
)

var sentinels = []error{wire.ErrShort, wire.ErrVersion, wire.ErrKind, wire.ErrTooLong, wire.ErrName, wire.ErrTrailing, wire.ErrExt}

// wrapped reports which sentinels err wraps.
func wrapped(err error) []error {
	var out []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			out = append(out, s)
		}
	}
	return out
}

func checkWraps(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one wrapping %v", want)
	}
	if got := wrapped(err); len(got) != 1 || got[0] != want {
		t.Fatalf("error %q wraps %v, want exactly %v", err, got, want)
	}
}

// headers is a set of valid headers (Flags never hold FlagExt, which is
// the encoding's, not the header's), each encodable without truncation.
var headers = []struct {
	name string
	h    wire.Header
}{
	{"publish json", wire.Header{Kind: wire.KindPublish, Codec: "json", Type: "main.Pose", Sender: "3f2a9c1e7b5d4e60", Seq: 1, SendTime: 1_764_000_000_123_456_789}},
	{"zero publish", wire.Header{Kind: wire.KindPublish}},
	{"request protobuf", wire.Header{Kind: wire.KindRequest, Flags: 0x81, Codec: "protobuf", Type: "colugo.examples.AddRequest", Sender: "node-a", Seq: 7, SendTime: 42, RequestID: 99, Deadline: 5_000_000_000}},
	{"reply with error", wire.Header{Kind: wire.KindReply, Status: 3, Codec: "raw", Sender: "b", RequestID: math.MaxUint64, Error: "handler: division by zero ✗"}},
	{"cancel", wire.Header{Kind: wire.KindCancel, RequestID: 1}},
	{"control", wire.Header{Kind: wire.KindControl, Codec: "json", Type: "$describe"}},
	{"negative times", wire.Header{Kind: wire.KindRequest, SendTime: -1, Deadline: -5}},
	{"extreme numbers", wire.Header{Kind: wire.KindPublish, Flags: 0xff &^ wire.FlagExt, Status: 0xff, Seq: math.MaxUint64, SendTime: math.MinInt64, RequestID: math.MaxUint64, Deadline: math.MaxInt64}},
	{"min deadline", wire.Header{Kind: wire.KindReply, SendTime: math.MaxInt64, Deadline: math.MinInt64}},
	{"max lengths", wire.Header{
		Kind:   wire.KindReply,
		Codec:  strings.Repeat("c", wire.MaxCodec),
		Type:   strings.Repeat("t", wire.MaxType),
		Sender: strings.Repeat("s", wire.MaxSender),
		Error:  strings.Repeat("e", wire.MaxError),
		Seq:    math.MaxUint64, SendTime: math.MinInt64, RequestID: math.MaxUint64, Deadline: math.MinInt64,
	}},
	{"binary strings", wire.Header{Kind: wire.KindPublish, Codec: "x\x00y", Type: "\xff\xfe", Sender: "🤖", Error: "\x00"}},
}

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range headers {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enc := tt.h.Append(nil)
			if len(enc) > wire.MaxHeader {
				t.Fatalf("encoding is %d bytes, more than MaxHeader %d", len(enc), wire.MaxHeader)
			}
			if enc[0] != 0xC1 {
				t.Fatalf("first byte 0x%02x, want 0xC1", enc[0])
			}
			got, err := wire.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.h {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.h)
			}
			// Append extends a buffer without touching what it holds.
			prefix := []byte("prefix")
			buf := tt.h.Append(prefix)
			if !bytes.Equal(buf[:len(prefix)], []byte("prefix")) || !bytes.Equal(buf[len(prefix):], enc) {
				t.Fatal("Append with a prefix differs from Append(nil)")
			}
		})
	}
}

func TestHeaderLayout(t *testing.T) {
	t.Parallel()
	h := wire.Header{Kind: wire.KindReply, Flags: 2, Status: 3, Codec: "json", Type: "T", Sender: "id", Seq: 300, SendTime: -1, RequestID: 5, Deadline: 64, Error: "no"}
	want := []byte{
		0xC1, 3, 2, 3,
		4, 'j', 's', 'o', 'n',
		1, 'T',
		2, 'i', 'd',
		0xAC, 0x02, // uvarint 300
		0x01, // zigzag varint -1
		5,
		0x80, 0x01, // zigzag varint 64
		2, 'n', 'o',
	}
	if got := h.Append(nil); !bytes.Equal(got, want) {
		t.Fatalf("layout:\n got % x\nwant % x", got, want)
	}
}

func TestAppendCutsLongStrings(t *testing.T) {
	t.Parallel()
	h := wire.Header{
		Kind:   wire.KindPublish,
		Codec:  strings.Repeat("c", wire.MaxCodec+1),
		Type:   strings.Repeat("t", wire.MaxType+10),
		Sender: strings.Repeat("s", wire.MaxSender+100),
		Error:  strings.Repeat("e", wire.MaxError+1),
	}
	got, err := wire.Decode(h.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Codec) != wire.MaxCodec || len(got.Type) != wire.MaxType || len(got.Sender) != wire.MaxSender || len(got.Error) != wire.MaxError {
		t.Fatalf("lengths %d %d %d %d, want the bounds", len(got.Codec), len(got.Type), len(got.Sender), len(got.Error))
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	t.Parallel()
	for _, tt := range headers {
		enc := tt.h.Append(nil)
		got, err := wire.Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range enc {
			enc[i] = 'Z'
		}
		if got != tt.h {
			t.Fatalf("%s: decoded strings alias the frame: %+v", tt.name, got)
		}
	}
}

func TestDecodeTruncated(t *testing.T) {
	t.Parallel()
	for _, tt := range headers {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enc := tt.h.Append(nil)
			for i := range len(enc) {
				h, err := wire.Decode(enc[:i])
				checkWraps(t, err, wire.ErrShort)
				if h != (wire.Header{}) {
					t.Fatalf("truncated at %d: got non-zero header %+v", i, h)
				}
			}
		})
	}
	if _, err := wire.Decode(nil); !errors.Is(err, wire.ErrShort) {
		t.Fatalf("Decode(nil) = %v, want ErrShort", err)
	}
}

func TestDecodeVersion(t *testing.T) {
	t.Parallel()
	valid := headers[0].h.Append(nil)
	for _, first := range []byte{0x00, 0x01, 0x41, 0xC0, 0xC2, 0xCF, 0xD1, 0xB1, 0xE1, 0xF1, 0xFF} {
		b := bytes.Clone(valid)
		b[0] = first
		h, err := wire.Decode(b)
		checkWraps(t, err, wire.ErrVersion)
		if h != (wire.Header{}) {
			t.Fatalf("0x%02x: got non-zero header %+v", first, h)
		}
	}
}

func TestDecodeKind(t *testing.T) {
	t.Parallel()
	valid := headers[0].h.Append(nil)
	for k := range 256 {
		b := bytes.Clone(valid)
		b[1] = byte(k)
		h, err := wire.Decode(b)
		if k >= 1 && k <= 5 {
			if err != nil || h.Kind != wire.Kind(k) {
				t.Fatalf("kind %d: %+v, %v", k, h, err)
			}
			continue
		}
		checkWraps(t, err, wire.ErrKind)
		if h != (wire.Header{}) {
			t.Fatalf("kind %d: got non-zero header %+v", k, h)
		}
	}
}

// encodeFields builds a header by hand so that tests can write lengths the
// encoder never would.
func encodeFields(codec, typ, sender []byte, nums [4]uint64, errMsg []byte) []byte {
	b := []byte{0xC1, byte(wire.KindPublish), 0, 0}
	for _, s := range [][]byte{codec, typ, sender} {
		b = append(b, s...)
	}
	for _, n := range nums {
		b = binary.AppendUvarint(b, n)
	}
	return append(b, errMsg...)
}

func lenPrefixed(n uint64, body string) []byte {
	return append(binary.AppendUvarint(nil, n), body...)
}

func TestDecodeTooLong(t *testing.T) {
	t.Parallel()
	ok := func(n int) []byte { return lenPrefixed(uint64(n), strings.Repeat("x", n)) }
	overflow := bytes.Repeat([]byte{0xff}, 10) // more than 64 bits
	overflow = append(overflow, 0x01)
	tests := []struct {
		name string
		b    []byte
	}{
		{"codec", encodeFields(ok(wire.MaxCodec+1), ok(0), ok(0), [4]uint64{}, ok(0))},
		{"type", encodeFields(ok(0), ok(wire.MaxType+1), ok(0), [4]uint64{}, ok(0))},
		{"sender", encodeFields(ok(0), ok(0), ok(wire.MaxSender+1), [4]uint64{}, ok(0))},
		{"error", encodeFields(ok(0), ok(0), ok(0), [4]uint64{}, ok(wire.MaxError+1))},
		{"codec length without bytes", encodeFields(lenPrefixed(wire.MaxCodec+1, ""), nil, nil, [4]uint64{}, nil)},
		{"huge type length", encodeFields(ok(0), lenPrefixed(math.MaxUint64, "abc"), nil, [4]uint64{}, nil)},
		{"error length 1<<63", encodeFields(ok(0), ok(0), ok(0), [4]uint64{}, lenPrefixed(1<<63, "x"))},
		{"overflowing codec length", encodeFields(overflow, nil, nil, [4]uint64{}, nil)},
		{"overflowing seq", append(encodeFields(ok(0), ok(0), ok(0), [4]uint64{}, nil)[:7], append(overflow, 0, 0, 0, 0)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := wire.Decode(tt.b)
			checkWraps(t, err, wire.ErrTooLong)
			if h != (wire.Header{}) {
				t.Fatalf("got non-zero header %+v", h)
			}
		})
	}
}

func TestDecodeShortField(t *testing.T) {
	t.Parallel()
	// The length fits its bound but the frame ends before the bytes.
	b := encodeFields(lenPrefixed(4, "js"), nil, nil, [4]uint64{}, nil)
	_, err := wire.Decode(b)
	checkWraps(t, err, wire.ErrShort)
}

func TestDecodeTrailing(t *testing.T) {
	t.Parallel()
	for _, tt := range headers {
		enc := tt.h.Append(nil)
		for _, extra := range [][]byte{{0}, {0xC1}, []byte("trailing"), enc} {
			h, err := wire.Decode(append(bytes.Clone(enc), extra...))
			checkWraps(t, err, wire.ErrTrailing)
			if h != (wire.Header{}) {
				t.Fatalf("%s: got non-zero header %+v", tt.name, h)
			}
		}
	}
}

func TestDecodeNonMinimalVarints(t *testing.T) {
	t.Parallel()
	// Other encoders may pad varints; Decode accepts them and Append writes
	// the minimal form.
	b := []byte{0xC1, 1, 0, 0,
		0x84, 0x00, 'j', 's', 'o', 'n', // length 4 in two bytes
		0x80, 0x80, 0x00, // length 0 in three bytes
		0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, // sender length 0 in ten bytes
		0x81, 0x00, // seq 1
		0, 0, 0, 0,
	}
	h, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Header{Kind: wire.KindPublish, Codec: "json", Seq: 1}
	if h != want {
		t.Fatalf("got %+v, want %+v", h, want)
	}
	if enc := h.Append(nil); len(enc) >= len(b) {
		t.Fatalf("re-encoding is %d bytes, want fewer than %d", len(enc), len(b))
	}
}

func TestMaxHeaderBoundsDecodable(t *testing.T) {
	t.Parallel()
	// The longest frame Decode accepts: every varint ten bytes long.
	pad := func(n uint64) []byte {
		b := make([]byte, 0, binary.MaxVarintLen64)
		for range binary.MaxVarintLen64 - 1 {
			b = append(b, byte(n&0x7f)|0x80)
			n >>= 7
		}
		return append(b, byte(n))
	}
	b := []byte{0xC1, byte(wire.KindReply), 0, 0}
	for _, n := range []int{wire.MaxCodec, wire.MaxType, wire.MaxSender} {
		b = append(append(b, pad(uint64(n))...), strings.Repeat("x", n)...)
	}
	for range 4 {
		b = append(b, pad(1)...)
	}
	b = append(append(b, pad(wire.MaxError)...), strings.Repeat("x", wire.MaxError)...)
	if _, err := wire.Decode(b); err != nil {
		t.Fatal(err)
	}
	b[2] |= wire.FlagExt
	b = append(b, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0) // type, ten bytes
	b = append(b, pad(uint64(wire.MaxExt-20))...)
	b = append(b, strings.Repeat("x", wire.MaxExt-20)...)
	if _, err := wire.Decode(b); err != nil {
		t.Fatal(err)
	}
	if len(b) > wire.MaxHeader {
		t.Fatalf("Decode accepts a %d-byte header, MaxHeader is %d", len(b), wire.MaxHeader)
	}
}

func TestKind(t *testing.T) {
	t.Parallel()
	names := map[wire.Kind]string{0: "invalid", 1: "publish", 2: "request", 3: "reply", 4: "cancel", 5: "control", 6: "kind(6)", 255: "kind(255)"}
	for k, want := range names {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
		if valid := k >= 1 && k <= 5; k.Valid() != valid {
			t.Errorf("Kind(%d).Valid() = %v", k, k.Valid())
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	enc := headers[0].h.Append(nil) // a typical publish header
	if got := testing.AllocsPerRun(100, func() { _, _ = wire.Decode(enc) }); got > 1 {
		t.Errorf("Decode of a publish header: %v allocations, want at most 1", got)
	}
	interned := (&wire.Header{Kind: wire.KindCancel, Codec: "protobuf", RequestID: 9}).Append(nil)
	if got := testing.AllocsPerRun(100, func() { _, _ = wire.Decode(interned) }); got != 0 {
		t.Errorf("Decode of a header with only interned strings: %v allocations, want 0", got)
	}
	var buf []byte
	h := headers[3].h
	if got := testing.AllocsPerRun(100, func() { buf = h.Append(buf[:0]) }); got != 0 {
		t.Errorf("Append into a reused buffer: %v allocations, want 0", got)
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	emoji63 := strings.Repeat("🤖", 63) // 252 bytes
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", "", false},
		{"one byte", "a", true},
		{"slash", "robot/pose", true},
		{"underscore", "robot_arm/joint_states", true},
		{"only underscore", "_", true},
		{"only slash", "/", true},
		{"dollar control", "$describe", true},
		{"spaces and dots", "a b.c-d", true},
		{"emoji", "🤖/pose", true},
		{"cjk", "ロボット/姿勢", true},
		{"255 bytes", strings.Repeat("a", 255), true},
		{"255 bytes multibyte", emoji63 + "abc", true},
		{"256 bytes", strings.Repeat("a", 256), false},
		{"256 bytes multibyte", emoji63 + "abcd", false},
		{"embedded NUL", "a\x00b", false},
		{"leading NUL", "\x00a", false},
		{"trailing NUL", "a\x00", false},
		{"only NUL", "\x00", false},
		{"invalid byte", "a\xffb", false},
		{"lone continuation", "\x80", false},
		{"overlong NUL", "\xc0\x80", false},
		{"surrogate", "\xed\xa0\x80", false},
		{"cut emoji", "🤖"[:3], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := wire.CheckName(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v", tt.in, err)
				}
			} else {
				checkWraps(t, err, wire.ErrName)
			}

			// A name frame carries exactly the names CheckName accepts.
			frame := wire.AppendName(nil, tt.in)
			if len(frame) != len(tt.in)+1 || frame[len(frame)-1] != 0 {
				t.Fatalf("AppendName(%q) = %q", tt.in, frame)
			}
			got, err := wire.ParseName(frame)
			if tt.ok {
				if err != nil || got != tt.in {
					t.Fatalf("ParseName(%q) = %q, %v", frame, got, err)
				}
			} else {
				checkWraps(t, err, wire.ErrName)
				if got != "" {
					t.Fatalf("ParseName(%q) = %q with an error", frame, got)
				}
			}
		})
	}
}

func TestParseName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame []byte
		want  string // "" means an error
	}{
		{"nil", nil, ""},
		{"empty frame", []byte{}, ""},
		{"only NUL", []byte{0}, ""},
		{"missing NUL", []byte("robot/pose"), ""},
		{"two NULs", []byte("a\x00\x00"), ""},
		{"NUL inside", []byte("a\x00b\x00"), ""},
		{"NUL not last", []byte("ab\x00c"), ""},
		{"invalid UTF-8", []byte("\xff\x00"), ""},
		{"256 bytes", append(bytes.Repeat([]byte("a"), 256), 0), ""},
		{"255 bytes", append(bytes.Repeat([]byte("a"), 255), 0), strings.Repeat("a", 255)},
		{"topic", []byte("robot/pose\x00"), "robot/pose"},
		{"prefix of another", []byte("a\x00"), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := wire.ParseName(tt.frame)
			if tt.want == "" {
				checkWraps(t, err, wire.ErrName)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseName(%q) = %q, %v; want %q", tt.frame, got, err, tt.want)
			}
		})
	}
}

func TestParseNameDoesNotAlias(t *testing.T) {
	t.Parallel()
	frame := wire.AppendName(nil, "robot/pose")
	name, err := wire.ParseName(frame)
	if err != nil {
		t.Fatal(err)
	}
	copy(frame, "XXXXXXXXXX")
	if name != "robot/pose" {
		t.Fatalf("name aliases the frame: %q", name)
	}
}

func TestAppendNamePrefix(t *testing.T) {
	t.Parallel()
	got := wire.AppendName([]byte("x"), "ab")
	if string(got) != "xab\x00" {
		t.Fatalf("AppendName with prefix = %q", got)
	}
	// Subscribing to "a" must not match "ab": the NUL ends the prefix.
	if bytes.HasPrefix(wire.AppendName(nil, "ab"), wire.AppendName(nil, "a")) {
		t.Fatal(`frame of "ab" starts with the frame of "a"`)
	}
}

func TestDecodeReuse(t *testing.T) {
	h := wire.Header{Kind: wire.KindPublish, Codec: "json", Type: "main.Pose", Sender: "0123456789abcdef", Seq: 1}
	b := h.Append(nil)
	prev, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		got, err := wire.DecodeReuse(b, &prev)
		if err != nil || got != h {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("DecodeReuse of a repeated header: %v allocs, want 0", allocs)
	}
	other := h
	other.Sender = "fedcba9876543210"
	got, err := wire.DecodeReuse(other.Append(nil), &prev)
	if err != nil || got != other {
		t.Fatalf("changed sender: got %+v, %v", got, err)
	}
}
