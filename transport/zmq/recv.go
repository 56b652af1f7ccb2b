package zmq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file is the receive side of the traffic phase: a ZMTP 3 frame reader
// used instead of zmq4's Conn.RecvMsg once zmq4 has done the handshake.
//
// Why not zmq4's: profiled on 64-byte pub/sub, the subscriber's reader
// goroutine is the bottleneck and RecvMsg is half of it. zmq4 v0.17.0's
// Conn.read allocates every frame body, grows the Frames slice frame by
// frame (3 allocations for 3 frames), heap-allocates its header arrays, and
// makes two or three io.ReadFull calls per frame through the net.Conn
// interface: 8 allocations per colugo message before colugo sees it. This
// reader parses frame headers out of the connection's bufio.Reader, keeps
// the frames before the last one (name and header, which decode copies
// what it keeps of) in a scratch buffer reused from message to message, and
// allocates only the last frame, the payload, which the handler keeps. The
// wire is unchanged, and the checks the guard makes for zmq4 (reserved
// flags, the frame and message size cap, the frame count cap) are made here
// the same way, before anything is allocated.
//
// Commands: PING is answered with an empty PONG, as zmq4 does, through the
// same side buffer that zmq4's PONGs went through, so a PONG never splits a
// message; SUBSCRIBE and CANCEL (ZMTP 3.1 subscriptions) come back to the
// caller like zmq4's command messages do; other commands are ignored. A
// command frame inside a multi-frame message, or with the MORE flag, ends
// the connection, as zmq4's "invalid length command" does.
//
// The upstream change this suggests for zmq4 is a Conn.RecvMsg variant that
// reads through a bufio.Reader and takes a frame allocator; kept here until
// then.

var errBadCommand = errors.New("malformed command")

// pongFrame is the whole PONG command frame zmq4 sends: no ping context.
var pongFrame = append(appendFrameHeader(nil, flagCommand, 5), "\x04PONG"...)

// inMsg is one received message. frames[:len-1] point into the
// connection's scratch buffer and are valid until the next read; the last
// frame is the caller's.
type inMsg struct {
	frames [][]byte
	cmd    cmdKind // for a command: which; its body is frames[0] (may be empty)
	isCmd  bool
}

// recvBuf is the reader's reusable state; reading goroutine only.
type recvBuf struct {
	scratch []byte
	offs    []int // frame boundaries in scratch
	frames  [][]byte
}

// maxScratch keeps a rare huge name or header frame from pinning memory.
const maxScratch = 64 << 10

// readMsg reads one message or command from c.br.
func (c *conn) readMsg() (inMsg, error) {
	if m, ok := c.readBuffered(); ok {
		return m, nil
	}
	rb := &c.rb
	if cap(rb.scratch) > maxScratch {
		rb.scratch = nil
	}
	rb.scratch = rb.scratch[:0]
	rb.offs = rb.offs[:0]
	var total uint64
	limit := uint64(c.t.cfg.maxFrame)
	for n := 1; ; n++ {
		flags, size, err := c.frameHeader()
		if err != nil {
			return inMsg{}, err
		}
		if flags&^(flagMore|flagLong|flagCommand) != 0 {
			return inMsg{}, errBadFlags
		}
		if n > maxFrames {
			return inMsg{}, errTooManyFrames
		}
		if size > limit || total+size > limit {
			return inMsg{}, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, size, limit)
		}
		total += size
		if flags&flagCommand != 0 {
			if n > 1 || flags&flagMore != 0 {
				return inMsg{}, errBadCommand
			}
			return c.readCommand(int(size))
		}
		if flags&flagMore == 0 { // the last frame: the caller's
			last := make([]byte, size)
			if _, err := io.ReadFull(c.br, last); err != nil {
				return inMsg{}, err
			}
			rb.frames = rb.frames[:0]
			start := 0
			for _, end := range rb.offs {
				rb.frames = append(rb.frames, rb.scratch[start:end:end])
				start = end
			}
			rb.frames = append(rb.frames, last)
			return inMsg{frames: rb.frames}, nil
		}
		start := len(rb.scratch)
		rb.scratch = append(rb.scratch, make([]byte, size)...)
		if _, err := io.ReadFull(c.br, rb.scratch[start:]); err != nil {
			return inMsg{}, err
		}
		rb.offs = append(rb.offs, len(rb.scratch))
	}
}

// readBuffered is readMsg's fast path: a data message that c.br already
// holds whole is parsed in place, its frames before the last pointing into
// c.br's buffer (valid until the next read, like the scratch buffer) and
// its last frame copied out. Anything else (a message not all buffered, a
// command, a frame over a limit) reports false before consuming a byte,
// and readMsg's general path reads it. Under load, small messages arrive
// many to a read, and this saves the general path's two copies and
// per-frame reads.
func (c *conn) readBuffered() (inMsg, bool) {
	b, _ := c.br.Peek(c.br.Buffered())
	limit := uint64(c.t.cfg.maxFrame)
	rb := &c.rb
	rb.frames = rb.frames[:0]
	var total uint64
	i := 0
	for n := 1; n <= maxFrames; n++ {
		flags, size, hl := parseFrameHeader(b[i:])
		if hl == 0 || flags&^(flagMore|flagLong) != 0 {
			return inMsg{}, false
		}
		i += hl
		if size > limit || total+size > limit || size > uint64(len(b)-i) {
			return inMsg{}, false
		}
		total += size
		f := b[i : i+int(size) : i+int(size)]
		i += int(size)
		if flags&flagMore == 0 {
			last := make([]byte, len(f))
			copy(last, f)
			rb.frames = append(rb.frames, last)
			_, _ = c.br.Discard(i)
			return inMsg{frames: rb.frames}, true
		}
		rb.frames = append(rb.frames, f)
	}
	return inMsg{}, false
}

// frameHeader reads a frame's flags and size.
func (c *conn) frameHeader() (flags byte, size uint64, err error) {
	h, err := c.br.Peek(2)
	if err != nil {
		if len(h) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	if h[0]&flagLong != 0 {
		if h, err = c.br.Peek(9); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, err
		}
	}
	flags, size, n := parseFrameHeader(h)
	_, _ = c.br.Discard(n)
	return flags, size, nil
}

// parseFrameHeader reads the frame header at the start of b: the flags,
// the body's size and the header's own length, n, which is 0 when b does
// not hold the whole header.
func parseFrameHeader(b []byte) (flags byte, size uint64, n int) {
	if len(b) < 2 {
		return 0, 0, 0
	}
	flags = b[0]
	if flags&flagLong == 0 {
		return flags, uint64(b[1]), 2
	}
	if len(b) < 9 {
		return flags, 0, 0
	}
	return flags, binary.BigEndian.Uint64(b[1:9]), 9
}

// readCommand reads a command body of size bytes and handles it.
func (c *conn) readCommand(size int) (inMsg, error) {
	rb := &c.rb
	rb.scratch = append(rb.scratch[:0], make([]byte, size)...)
	body := rb.scratch
	if _, err := io.ReadFull(c.br, body); err != nil {
		return inMsg{}, err
	}
	if len(body) == 0 || int(body[0]) > len(body)-1 {
		return inMsg{}, errBadCommand
	}
	name, rest := body[1:1+body[0]], body[1+body[0]:]
	m := inMsg{isCmd: true, cmd: cmdOther}
	switch string(name) {
	case "PING":
		m.cmd = cmdPing
		if err := c.sideWrite(pongFrame); err != nil {
			return inMsg{}, err
		}
	case "SUBSCRIBE":
		m.cmd = cmdSubscribe
	case "CANCEL":
		m.cmd = cmdCancel
	}
	rb.frames = append(rb.frames[:0], rest)
	m.frames = rb.frames
	return m, nil
}
