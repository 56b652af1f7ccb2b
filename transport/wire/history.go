package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// History requests. A subscriber that wants a publisher's history (see the
// root package's WithHistory) sends it a control request (KindControl)
// named [HistoryService] whose payload is:
//
//	byte     1 (this encoding's version)
//	uvarint  max: messages wanted, 1 to MaxHistoryRequest
//	uvarint  after: only messages with a greater sequence number (0: any)
//	bytes    topic (the rest of the payload; a valid name)
//
// The publisher answers with a reply (KindReply, status 0) whose payload
// is:
//
//	byte     flags (bit 0: more, the publisher holds later messages past
//	         the last entry: ask again with after = its seq)
//	uvarint  depth: messages it keeps for the topic (0: none)
//	uvarint  latest: its latest sequence number on the topic (0: none yet)
//	entries, to the end of the payload, each:
//	  uvarint  header length, then a header (this package's encoding:
//	           KindPublish, the original codec, type, sender, sequence
//	           number, send time and extensions, plus an ExtReplayed entry)
//	  uvarint  payload length, then the payload
//
// The entries are the newest max of the messages kept with a sequence
// number above after, oldest first; a reply holds at most about
// MaxHistoryReply bytes of them (always at least one), and sets more when
// it left some out. A publisher that keeps none answers depth 0 and no
// entries; a node that does not publish the topic answers status
// not_served. With a network key, request and reply are sealed and bound
// to each other like every control request, so the entries pass the
// receiver's replay and freshness checks as one fresh reply, their
// original send times inside the seal.
const (
	HistoryService = "$history"
	// HistoryCodec is the codec name of history requests and replies.
	HistoryCodec = "colugo-history"
	// MaxHistoryRequest bounds a history request's max.
	MaxHistoryRequest = 1 << 16
	// MaxHistoryReply bounds the entries of one history reply, in bytes
	// (an entry larger than that goes alone).
	MaxHistoryReply = 4 << 20
)

// ExtReplayed marks a message header as replayed from a publisher's
// history, in a history reply's entries. Its value is empty.
const ExtReplayed = 3

// ErrHistory is wrapped by the history decoders' errors.
var ErrHistory = errors.New("colugo/wire: malformed history message")

// HistoryRequest is a decoded history request.
type HistoryRequest struct {
	Topic string
	Max   int
	After uint64
}

// AppendHistoryRequest appends the encoding of r to b.
func AppendHistoryRequest(b []byte, r HistoryRequest) []byte {
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(max(r.Max, 0)))
	b = binary.AppendUvarint(b, r.After)
	return append(b, r.Topic...)
}

// DecodeHistoryRequest decodes a history request payload.
func DecodeHistoryRequest(b []byte) (HistoryRequest, error) {
	if len(b) == 0 || b[0] != 1 {
		return HistoryRequest{}, fmt.Errorf("%w: unknown request version", ErrHistory)
	}
	i := 1
	m, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return HistoryRequest{}, fmt.Errorf("%w: bad max", ErrHistory)
	}
	i += n
	after, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return HistoryRequest{}, fmt.Errorf("%w: bad after", ErrHistory)
	}
	i += n
	if m == 0 || m > MaxHistoryRequest {
		return HistoryRequest{}, fmt.Errorf("%w: max %d, want 1 to %d", ErrHistory, m, MaxHistoryRequest)
	}
	if err := checkName(b[i:]); err != nil {
		return HistoryRequest{}, fmt.Errorf("%w: topic: %w", ErrHistory, err)
	}
	return HistoryRequest{Topic: string(b[i:]), Max: int(m), After: after}, nil
}

// HistoryReply is a decoded history reply.
type HistoryReply struct {
	More    bool
	Depth   uint64
	Latest  uint64
	Entries []HistoryEntry
}

// HistoryEntry is one message of a history reply.
type HistoryEntry struct {
	Header  Header
	Payload []byte
}

// AppendHistoryReplyStart appends a history reply's fixed part to b; the
// entries follow (AppendHistoryEntry).
func AppendHistoryReplyStart(b []byte, more bool, depth, latest uint64) []byte {
	var flags byte
	if more {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, depth)
	return binary.AppendUvarint(b, latest)
}

// AppendHistoryEntry appends one entry: h (which should carry ExtReplayed)
// and payload.
func AppendHistoryEntry(b []byte, h *Header, payload []byte) []byte {
	start := len(b)
	b = binary.AppendUvarint(b, 0) // placeholder, rewritten below
	hs := len(b)
	b = h.Append(b)
	hl := len(b) - hs
	var lenBuf [binary.MaxVarintLen64]byte
	ln := binary.PutUvarint(lenBuf[:], uint64(hl))
	if ln != 1 { // move the header to make room for a longer length
		b = append(b, make([]byte, ln-1)...)
		copy(b[start+ln:], b[hs:hs+hl])
	}
	copy(b[start:], lenBuf[:ln])
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// DecodeHistoryReply decodes a history reply payload. The entries'
// payloads alias b. It checks the structure only: each entry header must
// decode and be a publish; what they must match (sender, order) is the
// receiver's to check.
func DecodeHistoryReply(b []byte) (HistoryReply, error) {
	var r HistoryReply
	if len(b) == 0 || b[0]&^1 != 0 {
		return r, fmt.Errorf("%w: bad flags", ErrHistory)
	}
	r.More = b[0]&1 != 0
	i := 1
	var n int
	if r.Depth, n = binary.Uvarint(b[i:]); n <= 0 {
		return r, fmt.Errorf("%w: bad depth", ErrHistory)
	}
	i += n
	if r.Latest, n = binary.Uvarint(b[i:]); n <= 0 {
		return r, fmt.Errorf("%w: bad latest", ErrHistory)
	}
	i += n
	for i < len(b) {
		hl, n := binary.Uvarint(b[i:])
		if n <= 0 || hl > uint64(len(b)-i-n) || hl > MaxHeader {
			return r, fmt.Errorf("%w: bad entry header length", ErrHistory)
		}
		i += n
		h, err := Decode(b[i : i+int(hl)])
		if err != nil {
			return r, fmt.Errorf("%w: entry header: %w", ErrHistory, err)
		}
		if h.Kind != KindPublish {
			return r, fmt.Errorf("%w: entry of kind %v", ErrHistory, h.Kind)
		}
		i += int(hl)
		pl, n := binary.Uvarint(b[i:])
		if n <= 0 || pl > uint64(len(b)-i-n) {
			return r, fmt.Errorf("%w: bad entry payload length", ErrHistory)
		}
		i += n
		r.Entries = append(r.Entries, HistoryEntry{Header: h, Payload: b[i : i+int(pl) : i+int(pl)]})
		i += int(pl)
	}
	return r, nil
}
