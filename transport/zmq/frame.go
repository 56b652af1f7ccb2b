package zmq

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/colugo-go/colugo/internal/wire"
	"github.com/colugo-go/colugo/transport"
)

// ZMTP 3 frame flags.
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// appendFrameHeader appends the header of a ZMTP frame of size bytes.
func appendFrameHeader(b []byte, flags byte, size int) []byte {
	if size > 255 {
		b = append(b, flags|flagLong)
		return binary.BigEndian.AppendUint64(b, uint64(size))
	}
	return append(b, flags, byte(size))
}

// frameBuf holds the encoded frames of one message up to and including the
// payload frame's header; the payload is written from the caller's slice.
// Publish shares one frameBuf among every subscriber's queue: it is
// immutable once queued and goes back to the pool when the last writer has
// written it.
type frameBuf struct {
	b    []byte
	hdr  []byte // scratch for the header before its frame length is known
	refs atomic.Int32
}

var framePool = sync.Pool{New: func() any {
	return &frameBuf{b: make([]byte, 0, 256), hdr: make([]byte, 0, 128)}
}}

// maxPooled keeps a rare huge header from pinning memory in the pool.
const maxPooled = 16 << 10

// newFrameBuf encodes [name+"\x00", h, payload frame header] with one
// reference held by the caller.
func newFrameBuf(name string, h *wire.Header, payloadLen int) *frameBuf {
	fb := framePool.Get().(*frameBuf)
	fb.refs.Store(1)
	fb.hdr = h.Append(fb.hdr[:0])
	b := appendFrameHeader(fb.b[:0], flagMore, len(name)+1)
	b = wire.AppendName(b, name)
	b = appendFrameHeader(b, flagMore, len(fb.hdr))
	b = append(b, fb.hdr...)
	fb.b = appendFrameHeader(b, 0, payloadLen)
	return fb
}

// newRawFrameBuf holds one single-frame message (a subscription).
func newRawFrameBuf(frame []byte) *frameBuf {
	fb := framePool.Get().(*frameBuf)
	fb.refs.Store(1)
	b := appendFrameHeader(fb.b[:0], 0, len(frame))
	fb.b = append(b, frame...)
	return fb
}

func (fb *frameBuf) retain() { fb.refs.Add(1) }

func (fb *frameBuf) release() {
	if fb.refs.Add(-1) == 0 && cap(fb.b) <= maxPooled && cap(fb.hdr) <= maxPooled {
		framePool.Put(fb)
	}
}

// outMsg is one queued message: fb's bytes, then payload (not copied: a
// Message is immutable once handed to the transport).
type outMsg struct {
	fb      *frameBuf
	payload []byte
}

// encodeMsg encodes msg for the wire with kind as the default for a zero
// Kind.
func encodeMsg(msg *transport.Message, def transport.Kind) outMsg {
	h := msg.Header
	if h.Kind == 0 {
		h.Kind = def
	}
	return outMsg{fb: newFrameBuf(msg.Name, &h, len(msg.Payload)), payload: msg.Payload}
}

// pingFrame returns a ZMTP 3.1 PING command whose TTL (in deciseconds, as
// libzmq reads it) is the peer timeout, with an empty context.
func pingFrame(ttlDeci int) []byte {
	ttl := min(max(ttlDeci, 0), 0xFFFF)
	body := []byte{4, 'P', 'I', 'N', 'G', byte(ttl >> 8), byte(ttl)}
	return append(appendFrameHeader(nil, flagCommand, len(body)), body...)
}
