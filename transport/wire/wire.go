// Package wire encodes and decodes colugo's frames: the name frame (topic or
// service followed by a NUL byte) and the versioned message header.
//
// A colugo message is three ZMTP frames: name frame, header, payload. The
// header layout (version 1) is, in order:
//
//	byte     magic and version (0xC1)
//	byte     kind (publish, request, reply, cancel, control)
//	byte     flags (bit 0: payload sealed with the network key)
//	byte     status (replies: 0 ok, else an error code)
//	string   codec name            (uvarint length, at most MaxCodec bytes)
//	string   type name             (uvarint length, at most MaxType bytes)
//	string   sender node id        (uvarint length, at most MaxSender bytes)
//	uvarint  sequence number (per publisher per topic)
//	varint   send time (unix ns)
//	uvarint  request id
//	varint   remaining time to the deadline (ns; 0 = none)
//	string   error message (replies; uvarint length, at most MaxError bytes)
//	bytes    extensions, only when flags bit 2 (FlagExt) is set: the rest of
//	         the frame, at most MaxExt bytes, a list of (uvarint type,
//	         uvarint length, value) entries
//
// # Extensions
//
// Version 1 decoders reject trailing bytes, so a header with extensions
// would be dropped by a node that predates them. The rules that keep mixed
// versions working:
//
//   - A header without extensions (Header.Ext empty) is byte-identical to
//     the version 1 header above, FlagExt clear: old colugo nodes and
//     foreign peers see nothing new.
//   - A sender writes extensions only to a peer that said it decodes them
//     (transport/zmq learns it in the ZMTP handshake; see its package
//     documentation). Any other peer gets the same message without them:
//     delivered, its extensions (metadata) lost.
//   - Decoders skip extension types they do not know, so new types need
//     no new version. Types are never reused with another meaning.
//   - Every entry is checked against the frame: a length past the frame's
//     end, a block over MaxExt or a flag with no entries fails the whole
//     header.
//
// Known types: [ExtMetadata] (one per-message metadata entry) and
// [ExtSealMAC] (with a network key, the authentication of the other
// entries; see the root package's sealing).
//
// Decoders never panic and never allocate more than the frame they are given.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Version is the header version this package writes and reads.
const Version = 1

const magic = 0xC0 // high bits of the first header byte; the low nibble is the version

// Bounds on the variable-length header fields and names, in bytes.
const (
	MaxName   = 255
	MaxCodec  = 64
	MaxType   = 255
	MaxSender = 64
	MaxError  = 4096
	// MaxExt bounds the extension block of a header (all its entries
	// with their types and lengths).
	MaxExt = 4096
	// MaxHeader bounds a whole encoded header: four bytes, four strings
	// with their lengths, four varints and the extension block. Each
	// varint is counted at its longest (a decoder accepts non-minimal
	// varints).
	MaxHeader = 4 + 4*binary.MaxVarintLen64 + MaxCodec + MaxType + MaxSender + MaxError + 4*binary.MaxVarintLen64 + MaxExt
)

// Bounds on per-message metadata (ExtMetadata entries), checked by
// senders: at most MaxMetadata entries, keys of 1 to MaxMetaKey bytes,
// values of at most MaxMetaValue bytes, and the whole extension block at
// most MaxExt bytes.
const (
	MaxMetadata  = 16
	MaxMetaKey   = 64
	MaxMetaValue = 1024
)

// Extension types.
const (
	// ExtMetadata is one metadata entry: uvarint key length, key, value
	// (the rest of the entry).
	ExtMetadata = 1
	// ExtSealMAC authenticates the entries before it, with the network
	// key: a sealed message's header carries it last.
	ExtSealMAC = 2
)

// Kind says what a message is.
type Kind uint8

// Message kinds.
const (
	KindPublish Kind = 1 + iota
	KindRequest
	KindReply
	KindCancel
	KindControl
)

var kindNames = [...]string{"invalid", "publish", "request", "reply", "cancel", "control"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindPublish && k <= KindControl }

// FlagSealed marks a payload sealed with the network key (see
// internal/seal): key id, nonce, ciphertext and tag.
const FlagSealed uint8 = 1

// FlagTail marks a tail marker: a publish without a value whose seq is the
// publisher's latest on the topic, sent to subscribers after some of them
// missed the latest messages, so that they learn of a lost tail (counted
// as gaps). Receivers deliver nothing for it.
const FlagTail uint8 = 2

// FlagExt marks a header followed by extensions. Append sets it from
// Header.Ext and Decode clears it from Header.Flags: it is part of the
// encoding, not of the Header.
const FlagExt uint8 = 4

// Header is the decoded form of a message header.
type Header struct {
	Kind      Kind
	Flags     uint8
	Status    uint8 // replies: 0 ok, else an error code
	Codec     string
	Type      string
	Sender    string // node id of the sender
	Seq       uint64 // per publisher per topic, from 1
	SendTime  int64  // unix ns
	RequestID uint64
	Deadline  int64 // remaining ns to the requester's deadline; 0 = none
	Error     string
	// Ext is the extension block, as on the wire: a list of (uvarint
	// type, uvarint length, value) entries; "" for none. See
	// [AppendExt] and [NextExt].
	Ext string
}

// Errors returned by the decoders. Each decode error wraps one of them.
var (
	ErrShort    = errors.New("colugo/wire: truncated frame")
	ErrVersion  = errors.New("colugo/wire: unknown header version")
	ErrKind     = errors.New("colugo/wire: unknown message kind")
	ErrTooLong  = errors.New("colugo/wire: field too long")
	ErrName     = errors.New("colugo/wire: bad name frame")
	ErrTrailing = errors.New("colugo/wire: trailing bytes after header")
	ErrExt      = errors.New("colugo/wire: malformed header extensions")
)

// Append appends the encoding of h to b and returns the extended slice.
// Strings longer than their bound are cut to it, so Append never fails;
// callers validate names up front.
//
// With a non-empty Ext, Append sets FlagExt and appends Ext as it is, cut
// to MaxExt bytes; callers build Ext with AppendExt and check its size.
// With an empty Ext, it clears FlagExt: the encoding is a version 1
// header as old decoders read it.
func (h *Header) Append(b []byte) []byte {
	flags := h.Flags &^ FlagExt
	if h.Ext != "" {
		flags |= FlagExt
	}
	b = append(b, magic|Version, byte(h.Kind), flags, h.Status)
	b = appendString(b, h.Codec, MaxCodec)
	b = appendString(b, h.Type, MaxType)
	b = appendString(b, h.Sender, MaxSender)
	b = binary.AppendUvarint(b, h.Seq)
	b = binary.AppendVarint(b, h.SendTime)
	b = binary.AppendUvarint(b, h.RequestID)
	b = binary.AppendVarint(b, h.Deadline)
	b = appendString(b, h.Error, MaxError)
	if h.Ext != "" {
		ext := h.Ext
		if len(ext) > MaxExt {
			ext = ext[:MaxExt]
		}
		b = append(b, ext...)
	}
	return b
}

// AppendExt appends one extension entry to an extension block.
func AppendExt(ext []byte, typ uint64, value string) []byte {
	ext = binary.AppendUvarint(ext, typ)
	ext = binary.AppendUvarint(ext, uint64(len(value)))
	return append(ext, value...)
}

// NextExt splits the first entry off an extension block: its type, its
// value and the rest of the block. ok is false at the end of the block
// and for a malformed one (Decode only returns well-formed blocks). It
// does not allocate.
func NextExt(ext string) (typ uint64, value, rest string, ok bool) {
	typ, i, ok := uvarintString(ext, 0)
	if !ok {
		return 0, "", "", false
	}
	n, i, ok := uvarintString(ext, i)
	if !ok || n > uint64(len(ext)-i) {
		return 0, "", "", false
	}
	return typ, ext[i : i+int(n)], ext[i+int(n):], true
}

// uvarintString reads a uvarint at s[i:] without converting s.
func uvarintString(s string, i int) (uint64, int, bool) {
	var v uint64
	for shift := uint(0); shift < 64 && i < len(s); shift += 7 {
		c := s[i]
		i++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				return 0, i, false
			}
			return v | uint64(c)<<shift, i, true
		}
		v |= uint64(c&0x7f) << shift
	}
	return 0, i, false
}

// checkExt checks that b is a well-formed, non-empty extension block.
func checkExt(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: flag set, no entries", ErrExt)
	}
	if len(b) > MaxExt {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrExt, len(b), MaxExt)
	}
	for i := 0; i < len(b); {
		_, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return fmt.Errorf("%w: bad type at byte %d", ErrExt, i)
		}
		i += n
		l, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return fmt.Errorf("%w: bad length at byte %d", ErrExt, i)
		}
		i += n
		if l > uint64(len(b)-i) {
			return fmt.Errorf("%w: entry of %d bytes past the end", ErrExt, l)
		}
		i += int(l)
	}
	return nil
}

// MetadataEntry splits the value of an ExtMetadata entry into key and
// value; ok is false for a malformed one. It does not allocate.
func MetadataEntry(v string) (key, value string, ok bool) {
	n, i, ok := uvarintString(v, 0)
	if !ok || n > uint64(len(v)-i) {
		return "", "", false
	}
	return v[i : i+int(n)], v[i+int(n):], true
}

// AppendMetadataEntry appends an ExtMetadata entry for key and value.
func AppendMetadataEntry(ext []byte, key, value string) []byte {
	n := len(key) + len(value) + uvarintLen(uint64(len(key)))
	ext = binary.AppendUvarint(ext, ExtMetadata)
	ext = binary.AppendUvarint(ext, uint64(n))
	ext = binary.AppendUvarint(ext, uint64(len(key)))
	ext = append(ext, key...)
	return append(ext, value...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendString(b []byte, s string, max int) []byte {
	if len(s) > max {
		s = s[:max]
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decode parses a header frame. The frame must hold exactly one header. On
// error it returns the zero Header and an error wrapping one of ErrShort,
// ErrVersion, ErrKind, ErrTooLong, ErrTrailing or ErrExt. Extensions are
// checked for their framing only: entries of unknown types are kept in
// Ext, for the caller to skip.
//
// The header's strings never alias b. Common codec names and empty strings
// cost nothing; all the other strings of one header share a single
// allocation, so decoding a typical publish header allocates once.
func Decode(b []byte) (Header, error) { return DecodeReuse(b, nil) }

// DecodeReuse is Decode, except that a string field equal to the same field
// of prev reuses prev's string instead of allocating. A connection reader
// passes the previous header it decoded: sender and type names repeat from
// message to message, so most headers then decode with no allocation.
func DecodeReuse(b []byte, prev *Header) (Header, error) {
	if prev != nil {
		if h, ok := decodeSame(b, prev); ok {
			return h, nil
		}
	}
	return decode(b, prev)
}

// decodeSame is DecodeReuse's fast path, for the usual header on a
// connection: every string equal to prev's (or empty, or a codec name) and
// every length a single byte. It reports false for anything else, valid or
// not, and decode then does the whole work, errors included. Profiled on
// 64-byte pub/sub, the general decoder was a quarter of the subscriber
// connection's reader goroutine.
func decodeSame(b []byte, prev *Header) (h Header, ok bool) {
	if len(b) < 4 || b[0] != magic|Version {
		return Header{}, false
	}
	h.Kind, h.Flags, h.Status = Kind(b[1]), b[2], b[3]
	if !h.Kind.Valid() || h.Flags&FlagExt != 0 {
		return Header{}, false
	}
	i := 4
	var codec, typ, sender, errMsg []byte
	var sendTime, deadline uint64
	if codec, i, ok = shortField(b, i, MaxCodec); !ok {
		return Header{}, false
	}
	if typ, i, ok = shortField(b, i, MaxType); !ok {
		return Header{}, false
	}
	if sender, i, ok = shortField(b, i, MaxSender); !ok {
		return Header{}, false
	}
	if h.Seq, i, ok = uvarintAt(b, i); !ok {
		return Header{}, false
	}
	if sendTime, i, ok = uvarintAt(b, i); !ok {
		return Header{}, false
	}
	if h.RequestID, i, ok = uvarintAt(b, i); !ok {
		return Header{}, false
	}
	if deadline, i, ok = uvarintAt(b, i); !ok {
		return Header{}, false
	}
	if errMsg, i, ok = shortField(b, i, MaxError); !ok || i != len(b) {
		return Header{}, false
	}
	h.SendTime, h.Deadline = unzigzag(sendTime), unzigzag(deadline)
	if h.Codec, ok = sameString(codec, prev.Codec); !ok {
		return Header{}, false
	}
	if h.Type, ok = sameString(typ, prev.Type); !ok {
		return Header{}, false
	}
	if h.Sender, ok = sameString(sender, prev.Sender); !ok {
		return Header{}, false
	}
	if h.Error, ok = sameString(errMsg, prev.Error); !ok {
		return Header{}, false
	}
	return h, true
}

// shortField reads a string field whose length is one byte.
func shortField(b []byte, i, max int) ([]byte, int, bool) {
	if i >= len(b) || b[i] >= 0x80 {
		return nil, i, false
	}
	n := int(b[i])
	i++
	if n > max || n > len(b)-i {
		return nil, i, false
	}
	return b[i : i+n], i + n, true
}

// uvarintAt reads a minimal or non-minimal uvarint at b[i:].
func uvarintAt(b []byte, i int) (uint64, int, bool) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1, true
	}
	if i > len(b) {
		return 0, i, false
	}
	v, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, i, false
	}
	return v, i + n, true
}

// unzigzag turns binary.AppendVarint's encoding back into the signed value.
func unzigzag(u uint64) int64 {
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// sameString returns the string for f without allocating: "" , a codec
// name, or prev when equal.
func sameString(f []byte, prev string) (string, bool) {
	if string(f) == prev { // no allocation for the comparison
		return prev, true
	}
	return internString(f)
}

// decode is the general decoder: every valid header, and a precise error
// for every invalid one.
func decode(b []byte, prev *Header) (Header, error) {
	if len(b) < 4 {
		return Header{}, fmt.Errorf("%w: header is %d bytes", ErrShort, len(b))
	}
	if b[0]&0xF0 != magic || b[0]&0x0F != Version {
		return Header{}, fmt.Errorf("%w: first byte 0x%02x", ErrVersion, b[0])
	}
	h := Header{Kind: Kind(b[1]), Flags: b[2], Status: b[3]}
	if !h.Kind.Valid() {
		return Header{}, fmt.Errorf("%w: %d", ErrKind, b[1])
	}
	d := decoder{b: b[4:]}
	var strs [4][]byte // codec, type, sender, error: made strings below, in one allocation
	strs[0] = d.bytes(MaxCodec, "codec")
	strs[1] = d.bytes(MaxType, "type")
	strs[2] = d.bytes(MaxSender, "sender")
	h.Seq = d.uvarint("seq")
	h.SendTime = d.varint("send time")
	h.RequestID = d.uvarint("request id")
	h.Deadline = d.varint("deadline")
	strs[3] = d.bytes(MaxError, "error")
	if d.err != nil {
		return Header{}, d.err
	}
	var ext []byte
	if h.Flags&FlagExt != 0 {
		if err := checkExt(d.b); err != nil {
			return Header{}, err
		}
		ext, h.Flags = d.b, h.Flags&^FlagExt
	} else if len(d.b) != 0 {
		return Header{}, fmt.Errorf("%w: %d bytes", ErrTrailing, len(d.b))
	}
	out := makeStrings(&strs, prev)
	h.Codec, h.Type, h.Sender, h.Error = out[0], out[1], out[2], out[3]
	if ext != nil {
		h.Ext = string(ext) // its own allocation, only for headers with extensions
	}
	return h, nil
}

// makeStrings turns the fields into strings: interned ones for free, the
// rest cut from one string holding them all, so that a header costs at most
// one allocation. The price is that keeping one of those strings keeps the
// others' bytes too: a few hundred bytes, MaxHeader at worst.
func makeStrings(fields *[4][]byte, prev *Header) [4]string {
	var out [4]string
	var done [4]bool
	var old [4]string
	if prev != nil {
		old = [4]string{prev.Codec, prev.Type, prev.Sender, prev.Error}
	}
	total := 0
	for i, f := range fields {
		out[i], done[i] = internString(f)
		if !done[i] && prev != nil && len(f) > 0 && string(f) == old[i] {
			out[i], done[i] = old[i], true
		}
		if !done[i] {
			total += len(f)
		}
	}
	if total == 0 {
		return out
	}
	var sb strings.Builder
	sb.Grow(total)
	for i, f := range fields {
		if !done[i] {
			sb.Write(f)
		}
	}
	all := sb.String()
	for i, f := range fields {
		if !done[i] {
			out[i], all = all[:len(f)], all[len(f):]
		}
	}
	return out
}

// decoder keeps the first error so Decode reads as a straight list of fields.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = varintError(n, field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = varintError(n, field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varintError explains a failed binary.Uvarint or binary.Varint: n == 0
// means the frame ended inside the varint, n < 0 that it overflows 64 bits.
func varintError(n int, field string) error {
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrShort, field)
	}
	return fmt.Errorf("%w: %s varint overflows 64 bits", ErrTooLong, field)
}

// bytes reads a length-prefixed string field. The result aliases the frame.
func (d *decoder) bytes(max int, field string) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.err = fmt.Errorf("%w: %s is %d bytes, at most %d", ErrTooLong, field, n, max)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: %s", ErrShort, field)
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// internString returns the strings seen on almost every message without an
// allocation: the empty string and the codec names.
func internString(b []byte) (string, bool) {
	switch string(b) { // the compiler does not allocate for this conversion
	case "":
		return "", true
	case "json":
		return "json", true
	case "raw":
		return "raw", true
	case "protobuf":
		return "protobuf", true
	}
	return "", false
}

// AppendName appends the name frame for a topic or service: name + NUL.
func AppendName(b []byte, name string) []byte {
	b = append(b, name...)
	return append(b, 0)
}

// ParseName returns the topic or service name in a name frame.
func ParseName(frame []byte) (string, error) {
	if len(frame) == 0 || frame[len(frame)-1] != 0 {
		return "", fmt.Errorf("%w: no NUL terminator", ErrName)
	}
	name := frame[:len(frame)-1]
	if err := checkName(name); err != nil {
		return "", err
	}
	return string(name), nil
}

// CheckName reports whether name can be a topic or service name: 1 to
// MaxName bytes of UTF-8 with no NUL.
func CheckName(name string) error { return checkName([]byte(name)) }

func checkName(name []byte) error {
	switch {
	case len(name) == 0:
		return fmt.Errorf("%w: empty", ErrName)
	case len(name) > MaxName:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrName, len(name), MaxName)
	case !utf8.Valid(name):
		return fmt.Errorf("%w: not UTF-8", ErrName)
	}
	for _, c := range name {
		if c == 0 {
			return fmt.Errorf("%w: contains NUL", ErrName)
		}
	}
	return nil
}
