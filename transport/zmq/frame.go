package zmq

import (
	"encoding/binary"
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

// pingFrame returns a ZMTP 3.1 PING command whose TTL (in deciseconds, as
// libzmq reads it) is the peer timeout, with an empty context.
func pingFrame(ttlDeci int) []byte {
	ttl := min(max(ttlDeci, 0), 0xFFFF)
	body := []byte{4, 'P', 'I', 'N', 'G', byte(ttl >> 8), byte(ttl)}
	return append(appendFrameHeader(nil, flagCommand, len(body)), body...)
}
