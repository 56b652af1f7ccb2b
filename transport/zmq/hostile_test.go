package zmq

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
	"github.com/colugo-go/colugo/transport/wire"
)

func request(id uint64, name string, payload string) [][]byte {
	h := transport.Header{Kind: transport.KindRequest, Codec: "raw", RequestID: id}
	return [][]byte{wire.AppendName(nil, name), h.Append(nil), []byte(payload)}
}

// readReply reads a whole 3-frame reply, skipping commands.
func readReply(t *testing.T, p *zmtptest.Peer) (transport.Header, string) {
	t.Helper()
	frames := p.Msg(t)
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
	rec := transporttest.NewRecorder()
	rec.SetOnRequest(echo)
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
		silent := zmtptest.DialRaw(t, ep.Router)
		silentPub := zmtptest.DialRaw(t, ep.Pub)
		start := time.Now()
		ok(t) // accept is not held up by the silent ones
		if el := time.Since(start); el > 250*time.Millisecond {
			t.Fatalf("request took %v with a silent client around", el)
		}
		silent.WaitEOF(t)
		silentPub.WaitEOF(t)
	})
	t.Run("Garbage", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Write(t, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), make([]byte, 64))
		p.WaitEOF(t)
		ok(t)
	})
	t.Run("HugeFrameInHandshake", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Write(t, zmtptest.Greeting(), []byte{flagCommand | flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0}) // 2^62
		p.WaitEOF(t)
		ok(t)
	})
	t.Run("ShortReadyMetadata", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		body := append([]byte{5}, "READY"...)
		body = append(body, 11, 'S', 'o', 'c') // property name cut short
		p.Write(t, zmtptest.Greeting(), zmtptest.Frame(flagCommand, body))
		p.WaitEOF(t)
		ok(t)
	})
	t.Run("WrongSocketType", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Write(t, zmtptest.Greeting(), zmtptest.Ready("PUB"))
		p.WaitEOF(t)
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
			p := zmtptest.DialRaw(t, addr)
			p.Handshake(t, typ)
			dropped := srv.Stats().RecvDropped
			p.Write(t, []byte{flagLong, 0x40, 0, 0, 0, 0, 0, 0, 0}) // 2^62
			p.WaitEOF(t)
			if srv.Stats().RecvDropped == dropped {
				t.Error("oversized frame not counted")
			}
		}
		ok(t)
	})
	t.Run("OverCap", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Handshake(t, "DEALER")
		// Two frames of 600 KiB: each under the 1 MiB cap, not together.
		p.Write(t, []byte{flagMore | flagLong, 0, 0, 0, 0, 0, 0x09, 0x60, 0x00})
		p.Write(t, make([]byte, 600<<10))
		p.Write(t, []byte{flagLong, 0, 0, 0, 0, 0, 0x09, 0x60, 0x00})
		p.WaitEOF(t)
		ok(t)
	})
	t.Run("TooManyFrames", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Handshake(t, "DEALER")
		var b []byte
		for range 100 {
			b = append(b, flagMore, 0)
		}
		_, _ = p.Conn.Write(b) // the server may close before it has read it all
		p.WaitEOF(t)
	})
	t.Run("TruncatedFrame", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Handshake(t, "DEALER")
		p.Write(t, []byte{flagMore, 10, 's', 'v'})
		_ = p.Conn.Close()
		ok(t)
	})
	t.Run("MalformedMessagesKeepTheConnection", func(t *testing.T) {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Handshake(t, "DEALER")
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
			p.Write(t, zmtptest.Msg(m...))
		}
		p.Write(t, zmtptest.Msg(good...))
		h, payload := readReply(t, p)
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
		p := zmtptest.DialRaw(t, ep.Router)
		p.Handshake(t, "DEALER")
		ping := zmtptest.Frame(flagCommand, append([]byte{4}, "PING\x00\x00ctx"...))
		const n = 2000
		done := make(chan error, 1)
		go func() {
			var b []byte
			for i := range n {
				fr := request(uint64(i+1), "svc", string(make([]byte, 300)))
				b = append(b, zmtptest.Frame(flagMore, fr[0])...)
				b = append(b, zmtptest.Frame(flagMore, fr[1])...)
				b = append(b, zmtptest.Frame(0, fr[2])...)
				b = append(b, ping...)
				if len(b) > 32<<10 {
					if _, err := p.Conn.Write(b); err != nil {
						done <- err
						return
					}
					b = b[:0]
				}
			}
			_, err := p.Conn.Write(b)
			done <- err
		}()
		_ = p.Conn.SetReadDeadline(time.Now().Add(testWait))
		replies, pongs := 0, 0
		inMsg := false
		for replies < n {
			fl, body, err := zmtptest.ReadFrame(p.R)
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
	rec := transporttest.NewRecorder()
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
			_, _ = nc.Write(append(zmtptest.Greeting(), zmtptest.Ready(socketType)...))
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
	if ev := <-rec.PeerLost; ev.Addr != routerAddr {
		t.Fatalf("lost %q", ev.Addr)
	}

	pubAddr, accepted := silentServer("PUB")
	if err := cli.Subscribe(pubAddr, "t", transport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	<-accepted
	select {
	case ev := <-rec.PeerLost:
		if ev.Addr != pubAddr {
			t.Fatalf("lost %q", ev.Addr)
		}
	case <-time.After(testWait):
		t.Fatal("silent publisher never reported lost")
	}
	_ = cli.Unsubscribe(pubAddr, "t")
}
