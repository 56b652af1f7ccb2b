// Package zmtptest is a hand-driven ZMTP 3.0 peer (NULL mechanism) for
// tests: it writes greetings, READY commands and frames byte by byte, as
// the RFC (rfc.zeromq.org/spec/23) spells them, not from colugo's own
// transport code, so that tests can send what no well-behaved peer would.
// The root package's hostile tests and the integration package use it.
package zmtptest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport/wire"
)

// Frame flags (ZMTP 3.0, section "Framing").
const (
	More    = 0x01
	Long    = 0x02
	Command = 0x04
)

// Timeout bounds every read of Dial, Msg and WaitClosed.
const Timeout = 10 * time.Second

// MaxFrame is the largest frame Peer.Frame accepts.
const MaxFrame = 16 << 20

// Greeting is a 64-byte ZMTP 3.0 greeting for the NULL mechanism.
func Greeting() []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10] = 0xFF, 0x7F, 3
	copy(g[12:], "NULL")
	return g
}

// Frame encodes body as one frame with flags, in the long form when
// body is longer than 255 bytes.
func Frame(flags byte, body []byte) []byte {
	var b []byte
	if len(body) > 255 {
		b = binary.BigEndian.AppendUint64(append(b, flags|Long), uint64(len(body)))
	} else {
		b = append(b, flags, byte(len(body)))
	}
	return append(b, body...)
}

// Prop appends a metadata property (a 1-byte name length, the name, a
// 4-byte value length, the value) to b.
func Prop(b []byte, name, value string) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// Ready is a READY command for socketType with an empty Identity.
func Ready(socketType string) []byte {
	body := append([]byte{5}, "READY"...)
	body = Prop(body, "Socket-Type", socketType)
	body = Prop(body, "Identity", "")
	return Frame(Command, body)
}

// Msg encodes frames as one message (More on all but the last).
func Msg(frames ...[]byte) []byte {
	var b []byte
	for i, f := range frames {
		var fl byte
		if i < len(frames)-1 {
			fl = More
		}
		b = append(b, Frame(fl, f)...)
	}
	return b
}

// Header encodes a colugo header as a foreign peer named "hostile" would.
func Header(kind wire.Kind, id uint64, deadline int64) []byte {
	h := wire.Header{Kind: kind, Codec: "json", Sender: "hostile", SendTime: time.Now().UnixNano(), RequestID: id, Deadline: deadline}
	return h.Append(nil)
}

// Peer is a hand-driven ZMTP peer on a connection.
type Peer struct {
	Conn net.Conn
	R    *bufio.Reader
}

// NewPeer wraps nc; it does no handshake.
func NewPeer(nc net.Conn) *Peer { return &Peer{Conn: nc, R: bufio.NewReader(nc)} }

// DialRaw connects to addr over TCP without a handshake; the connection
// is closed at the end of the test.
func DialRaw(t testing.TB, addr string) *Peer {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return NewPeer(nc)
}

// Dial connects and completes the handshake as socketType.
func Dial(t testing.TB, addr, socketType string) *Peer {
	t.Helper()
	p := DialRaw(t, addr)
	p.Handshake(t, socketType)
	return p
}

// Handshake sends a greeting and a READY as socketType and reads the other
// side's greeting and READY (within Timeout).
func (p *Peer) Handshake(t testing.TB, socketType string) {
	t.Helper()
	p.Write(t, Greeting(), Ready(socketType))
	_ = p.Conn.SetReadDeadline(time.Now().Add(Timeout))
	if _, err := io.ReadFull(p.R, make([]byte, 64)); err != nil {
		t.Fatal("greeting:", err)
	}
	if fl, body, err := p.Frame(); err != nil || fl&Command == 0 || !bytes.HasPrefix(body, []byte("\x05READY")) {
		t.Fatalf("READY: %v %q", err, body)
	}
}

// Write writes each of b, failing t on an error.
func (p *Peer) Write(t testing.TB, b ...[]byte) {
	t.Helper()
	for _, x := range b {
		if _, err := p.Conn.Write(x); err != nil {
			t.Fatal(err)
		}
	}
}

// Frame reads one frame: its flags and body. Frames over MaxFrame are an
// error.
func (p *Peer) Frame() (byte, []byte, error) { return ReadFrame(p.R) }

// ReadFrame reads one frame from r: its flags and body. Frames over
// MaxFrame are an error.
func ReadFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, nil, err
	}
	size := uint64(h[1])
	if h[0]&Long != 0 {
		if _, err := io.ReadFull(r, h[2:9]); err != nil {
			return 0, nil, err
		}
		size = binary.BigEndian.Uint64(h[1:9])
	}
	if size > MaxFrame {
		return 0, nil, errors.New("frame too large for a test peer")
	}
	body := make([]byte, size)
	_, err := io.ReadFull(r, body)
	return h[0], body, err
}

// Msg reads the next message, skipping commands (PINGs).
func (p *Peer) Msg(t testing.TB) [][]byte {
	t.Helper()
	_ = p.Conn.SetReadDeadline(time.Now().Add(Timeout))
	var frames [][]byte
	for {
		fl, body, err := p.Frame()
		if err != nil {
			t.Fatalf("reading a message: %v", err)
		}
		if fl&Command != 0 {
			continue
		}
		frames = append(frames, body)
		if fl&More == 0 {
			return frames
		}
	}
}

// Reply reads a 3-frame colugo reply and decodes its header.
func (p *Peer) Reply(t testing.TB) (wire.Header, []byte) {
	t.Helper()
	f := p.Msg(t)
	if len(f) != 3 {
		t.Fatalf("reply of %d frames", len(f))
	}
	h, err := wire.Decode(f[1])
	if err != nil || h.Kind != wire.KindReply {
		t.Fatalf("reply header %+v: %v", h, err)
	}
	return h, f[2]
}

// WaitClosed waits (up to Timeout) for the other side to close the
// connection.
func (p *Peer) WaitClosed(t testing.TB) {
	t.Helper()
	_ = p.Conn.SetReadDeadline(time.Now().Add(Timeout))
	if _, err := io.Copy(io.Discard, p.R); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("node did not close the connection: %v", err)
	}
}

// WaitEOF is WaitClosed that fails on any read error, a reset included:
// the other side must close the connection cleanly.
func (p *Peer) WaitEOF(t testing.TB) {
	t.Helper()
	_ = p.Conn.SetReadDeadline(time.Now().Add(Timeout))
	if _, err := io.Copy(io.Discard, p.R); err != nil {
		t.Fatalf("server did not close the connection: %v", err)
	}
}
