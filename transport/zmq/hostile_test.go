package zmq

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/wire"
)

// Raw ZMTP 3.0 helpers for hostile peers.

func zmtpGreeting() []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 0
	copy(g[12:], "NULL")
	return g
}

func zmtpFrame(flags byte, body []byte) []byte {
	return append(appendFrameHeader(nil, flags, len(body)), body...)
}

func zmtpProp(b []byte, k, v string) []byte {
	b = append(b, byte(len(k)))
	b = append(b, k...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func zmtpReady(socketType string) []byte {
	body := append([]byte{5}, "READY"...)
	body = zmtpProp(body, "Socket-Type", socketType)
	body = zmtpProp(body, "Identity", "")
	return zmtpFrame(flagCommand, body)
}

// readFrame reads one raw frame.
func readFrame(r *bufio.Reader) (flags byte, body []byte, err error) {
	var h [9]byte
	if _, err = io.ReadFull(r, h[:2]); err != nil {
		return 0, nil, err
	}
	size := uint64(h[1])
	if h[0]&flagLong != 0 {
		if _, err = io.ReadFull(r, h[2:9]); err != nil {
			return 0, nil, err
		}
		size = binary.BigEndian.Uint64(h[1:9])
	}
	if size > 1<<20 {
		return 0, nil, errors.New("test peer: frame too big")
	}
	body = make([]byte, size)
	_, err = io.ReadFull(r, body)
	return h[0], body, err
}

// rawPeer is a hand-driven ZMTP peer.
type rawPeer struct {
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawPeer {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawPeer{nc: nc, r: bufio.NewReader(nc)}
}

func (p *rawPeer) write(t *testing.T, b ...[]byte) {
	t.Helper()
	for _, x := range b {
		if _, err := p.nc.Write(x); err != nil {
			t.Fatal(err)
		}
	}
}

// handshake completes a NULL handshake as socketType.
func (p *rawPeer) handshake(t *testing.T, socketType string) {
	t.Helper()
	p.write(t, zmtpGreeting(), zmtpReady(socketType))
	_ = p.nc.SetReadDeadline(time.Now().Add(testWait))
	g := make([]byte, 64)
	if _, err := io.ReadFull(p.r, g); err != nil {
		t.Fatal("greeting:", err)
	}
	if fl, body, err := readFrame(p.r); err != nil || fl&flagCommand == 0 || string(body[1:6]) != "READY" {
		t.Fatalf("READY: %v %q", err, body)
	}
}

// waitClosed waits until the server closes p's connection, skipping
// whatever it sends (PINGs).
func (p *rawPeer) waitClosed(t *testing.T) {
	t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(testWait))
	if _, err := io.Copy(io.Discard, p.r); err != nil {
		t.Fatalf("server did not close the connection: %v", err)
	}
}

func request(id uint64, name string, payload string) [][]byte {
	h := transport.Header{Kind: transport.KindRequest, Codec: "raw", RequestID: id}
	return [][]byte{wire.AppendName(nil, name), h.Append(nil), []byte(payload)}
}

func (p *rawPeer) send(t *testing.T, frames [][]byte) {
	t.Helper()
	var b []byte
	for i, f := range frames {
		var fl byte
		if i < len(frames)-1 {
			fl = flagMore
		}
		b = append(b, zmtpFrame(fl, f)...)
	}
	p.write(t, b)
}

// readReply reads frames until a whole 3-frame reply, skipping commands.
func (p *rawPeer) readReply(t *testing.T) (transport.Header, string) {
	t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(testWait))
	var frames [][]byte
	for {
		fl, body, err := readFrame(p.r)
		if err != nil {
			t.Fatal("reading reply:", err)
		}
		if fl&flagCommand != 0 {
			continue
		}
		frames = append(frames, body)
		if fl&flagMore == 0 {
			break
		}
	}
	if len(frames) != 3 {
		t.Fatalf("reply has %d frames", len(frames))
	}
	h, err := wire.Decode(frames[1])
	if err != nil {
		t.Fatal(err)
	}
	return h, string(frames[2])
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestHostileInput throws malformed traffic at a transport's listeners and
// checks that it keeps serving, counts what it refused, and leaks no fd.
// It is not parallel: it counts the process's fds.
func TestHostileInput(t *testing.T) {
	fdsBefore := openFDs(t)
	rec := newRec()
	rec.onRequest = echo
	srv, ep := listen(t, rec, WithHandshakeTimeout(300*time.Millisecond), WithMaxFrameSize(1<<20))
	cli, _ := listen(t, &nopHandler{})
	ok := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if _, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: []byte("x")}); err != nil {
			t.Fatalf("transport stopped serving: %v", err)
		}
	}

	t.Run("SilentClient", func(t *testing.T) {
		silent := dialRaw(t, ep.Router)
		silentPub := dialRaw(t, ep.Pub)
		start := time.Now()
		ok(t) // accept is not held up by the silent ones
		if el := time.Since(start); el > 250*time.Millisecond {
			t.Fatalf("request took %v with a silent client around", el)
		}
		silent.waitClosed(t)
		silentPub.waitClosed(t)
	})
	t.Run("Garbage", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.write(t, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), make([]byte, 64))
		p.waitClosed(t)
		ok(t)
	})
	t.Run("HugeFrameInHandshake", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.write(t, zmtpGreeting(), []byte{flagCommand | flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0}) // 2^62
		p.waitClosed(t)
		ok(t)
	})
	t.Run("ShortReadyMetadata", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		body := append([]byte{5}, "READY"...)
		body = append(body, 11, 'S', 'o', 'c') // property name cut short
		p.write(t, zmtpGreeting(), zmtpFrame(flagCommand, body))
		p.waitClosed(t)
		ok(t)
	})
	t.Run("WrongSocketType", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.write(t, zmtpGreeting(), zmtpReady("PUB"))
		p.waitClosed(t)
	})

	refusedBefore := srv.Stats().ConnsRefused
	if refusedBefore < 5 {
		t.Errorf("ConnsRefused = %d, want ≥ 5", refusedBefore)
	}

	t.Run("HugeFrameAfterHandshake", func(t *testing.T) {
		for _, addr := range []string{ep.Router, ep.Pub} {
			typ := "DEALER"
			if addr == ep.Pub {
				typ = "SUB"
			}
			p := dialRaw(t, addr)
			p.handshake(t, typ)
			dropped := srv.Stats().RecvDropped
			p.write(t, []byte{flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0}) // 2^62
			p.waitClosed(t)
			if srv.Stats().RecvDropped == dropped {
				t.Error("oversized frame not counted")
			}
		}
		ok(t)
	})
	t.Run("OverCap", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.handshake(t, "DEALER")
		// Two frames of 600 KiB: each under the 1 MiB cap, not together.
		p.write(t, []byte{flagMore | flagLong, 0, 0, 0, 0, 0, 0x09, 0x60, 0x00})
		p.write(t, make([]byte, 600<<10))
		p.write(t, []byte{flagLong, 0, 0, 0, 0, 0, 0x09, 0x60, 0x00})
		p.waitClosed(t)
		ok(t)
	})
	t.Run("TooManyFrames", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.handshake(t, "DEALER")
		var b []byte
		for range 100 {
			b = append(b, flagMore, 0)
		}
		_, _ = p.nc.Write(b) // the server may close before it has read it all
		p.waitClosed(t)
	})
	t.Run("TruncatedFrame", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.handshake(t, "DEALER")
		p.write(t, []byte{flagMore, 10, 's', 'v'})
		_ = p.nc.Close()
		ok(t)
	})
	t.Run("MalformedMessagesKeepTheConnection", func(t *testing.T) {
		p := dialRaw(t, ep.Router)
		p.handshake(t, "DEALER")
		dropped := srv.Stats().RecvDropped
		good := request(7, "svc", "fine")
		badVersion := request(8, "svc", "v")
		badVersion[1][0] = 0xC2
		badKind := request(9, "svc", "k")
		badKind[1][1] = 77
		reply := request(10, "svc", "r")
		reply[1][1] = byte(transport.KindReply)
		for _, m := range [][][]byte{
			{[]byte("svc\x00")}, // one frame
			append(request(1, "svc", "x"), []byte("extra"), []byte("frames")), // five
			badVersion, badKind, reply,
			{[]byte("svc"), good[1], good[2]},        // name without NUL
			{[]byte("s\x00v\x00"), good[1], good[2]}, // NUL inside the name
			{good[0], good[1][:5], good[2]},          // truncated header
		} {
			p.send(t, m)
		}
		p.send(t, good)
		h, payload := p.readReply(t)
		if h.Kind != transport.KindReply || h.RequestID != 7 || payload != "fine" {
			t.Fatalf("reply %+v %q", h, payload)
		}
		if got := srv.Stats().RecvDropped - dropped; got != 8 {
			t.Fatalf("RecvDropped grew by %d, want 8", got)
		}
	})
	t.Run("PongsDoNotSplitMessages", func(t *testing.T) {
		// PINGs interleaved with requests: the PONGs that zmq4 writes from
		// the reading goroutine must come out between whole replies.
		p := dialRaw(t, ep.Router)
		p.handshake(t, "DEALER")
		ping := zmtpFrame(flagCommand, append([]byte{4}, "PING\x00\x00ctx"...))
		const n = 2000
		done := make(chan error, 1)
		go func() {
			var b []byte
			for i := range n {
				fr := request(uint64(i+1), "svc", string(make([]byte, 300)))
				b = append(b, zmtpFrame(flagMore, fr[0])...)
				b = append(b, zmtpFrame(flagMore, fr[1])...)
				b = append(b, zmtpFrame(0, fr[2])...)
				b = append(b, ping...)
				if len(b) > 32<<10 {
					if _, err := p.nc.Write(b); err != nil {
						done <- err
						return
					}
					b = b[:0]
				}
			}
			_, err := p.nc.Write(b)
			done <- err
		}()
		_ = p.nc.SetReadDeadline(time.Now().Add(testWait))
		replies, pongs := 0, 0
		inMsg := false
		for replies < n {
			fl, body, err := readFrame(p.r)
			if err != nil {
				t.Fatalf("after %d replies, %d pongs: %v", replies, pongs, err)
			}
			if fl&flagCommand != 0 {
				if inMsg {
					t.Fatal("command frame inside a message")
				}
				if string(body) == "\x04PONG" {
					pongs++
				}
				continue
			}
			inMsg = fl&flagMore != 0
			if !inMsg {
				replies++
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if pongs == 0 {
			t.Fatal("no PONG received")
		}
		t.Logf("%d replies, %d pongs", replies, pongs)
	})

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	_ = cli.Close()
	// Every fd the transports and the raw peers opened is closed again.
	// raw peers were closed by their subtests' cleanups.
	testwait.Until(t, "", func() bool { return openFDs(t) <= fdsBefore })
}

// TestSilentRouterIsLost: a server that completes the handshake and then
// neither reads nor answers is declared lost within the peer timeout.
func TestSilentPeersAreLost(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	rec := newRec()
	cli, _ := listen(t, rec, WithHeartbeatInterval(50*time.Millisecond), WithPeerTimeout(timeout))

	silentServer := func(socketType string) (string, chan struct{}) {
		var lc net.ListenConfig
		ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan struct{})
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			_, _ = nc.Write(append(zmtpGreeting(), zmtpReady(socketType)...))
			close(accepted)
			<-t.Context().Done() // silent until the test ends
		}()
		return ln.Addr().String(), accepted
	}

	routerAddr, _ := silentServer("ROUTER")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	_, err := cli.Request(ctx, routerAddr, &transport.Message{Name: "svc"})
	if !errors.Is(err, transport.ErrPeerLost) {
		t.Fatalf("request to a silent router: %v", err)
	}
	el := time.Since(start)
	if el < timeout || el > timeout*2 {
		t.Errorf("silent router lost after %v, want within [%v, %v]", el, timeout, 2*timeout)
	}
	if ev := <-rec.lost; ev.addr != routerAddr {
		t.Fatalf("lost %q", ev.addr)
	}

	pubAddr, accepted := silentServer("PUB")
	if err := cli.Subscribe(pubAddr, "t", transport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	<-accepted
	select {
	case ev := <-rec.lost:
		if ev.addr != pubAddr {
			t.Fatalf("lost %q", ev.addr)
		}
	case <-time.After(testWait):
		t.Fatal("silent publisher never reported lost")
	}
	_ = cli.Unsubscribe(pubAddr, "t")
}
