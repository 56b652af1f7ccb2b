package zmq

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
)

// dialRawFrom dials addr (TCP) from the loopback address src.
func dialRawFrom(t *testing.T, src, addr string) *zmtptest.Peer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return zmtptest.NewPeer(nc)
}

// tryHandshake is p.Handshake returning its error: a refused
// connection is closed before the server's greeting or READY.
func tryHandshake(p *zmtptest.Peer, socketType string) error {
	if _, err := p.Conn.Write(append(zmtptest.Greeting(), zmtptest.Ready(socketType)...)); err != nil {
		return err
	}
	_ = p.Conn.SetReadDeadline(time.Now().Add(testWait))
	if _, err := io.ReadFull(p.R, make([]byte, 64)); err != nil {
		return err
	}
	if _, _, err := zmtptest.ReadFrame(p.R); err != nil {
		return err
	}
	// The server sends its READY before it reads ours: a request and its
	// reply (or a PING) show that it took the connection.
	if socketType == "DEALER" {
		frames := request(1, "svc", "x")
		var b []byte
		for i, f := range frames {
			fl := byte(flagMore)
			if i == len(frames)-1 {
				fl = 0
			}
			b = append(b, zmtptest.Frame(fl, f)...)
		}
		if _, err := p.Conn.Write(b); err != nil {
			return err
		}
	}
	for {
		fl, _, err := zmtptest.ReadFrame(p.R)
		if err != nil {
			return err
		}
		if socketType != "DEALER" || fl&flagMore == 0 && fl&flagCommand == 0 {
			return nil // a PING, or the reply's last frame
		}
	}
}

// fillHandshakes opens n connections to addr from src that stop partway:
// silent, a partial greeting, or a greeting and no READY. They stay open
// until the test ends.
func fillHandshakes(t *testing.T, src, addr string, n int) []*zmtptest.Peer {
	t.Helper()
	peers := make([]*zmtptest.Peer, n)
	for i := range n {
		p := dialRawFrom(t, src, addr)
		switch i % 3 {
		case 1:
			p.Write(t, zmtptest.Greeting()[:10])
		case 2:
			p.Write(t, zmtptest.Greeting())
		}
		peers[i] = p
	}
	return peers
}

// TestHandshakeSlotsNotStarved: 300 connections stuck in handshake (from
// this test, on loopback) used to take every handshake slot for the whole
// handshake timeout, so that no new peer could connect (0/8). Now each new
// one evicts the oldest pending handshake: 8/8 new peers get through while
// the stuck ones stay open.
func TestHandshakeSlotsNotStarved(t *testing.T) {
	t.Parallel()
	rec := transporttest.NewRecorder()
	rec.SetOnRequest(echo)
	// Timeouts far beyond the test: only eviction can make room.
	srv, ep := listen(t, rec, WithGreetingTimeout(time.Minute), WithHandshakeTimeout(time.Minute))
	const stuck = 300
	fillHandshakes(t, "127.0.0.1", ep.Router, stuck)
	testwait.Until(t, "", func() bool { return srv.pendingHandshakes()+int(srv.Stats().ConnsRefused) == stuck })
	ok := 0
	for i := range 8 {
		cli, _ := listen(t, &nopHandler{}, WithUnixSockets(false))
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		start := time.Now()
		_, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: []byte("x")})
		cancel()
		if err != nil {
			t.Errorf("new peer %d: %v", i, err)
			continue
		}
		t.Logf("new peer %d: request in %v", i, time.Since(start))
		ok++
	}
	if ok != 8 {
		t.Fatalf("%d/8 new peers got through", ok)
	}
}

// TestHandshakeEvictionPerAddress: one address at its cap of pending
// handshakes evicts its own oldest, not another address's; the cap in all
// evicts the oldest of all.
func TestHandshakeEvictionPerAddress(t *testing.T) {
	t.Parallel()
	rec := transporttest.NewRecorder()
	rec.SetOnRequest(echo)
	srv, ep := listen(t, rec,
		WithGreetingTimeout(time.Minute), WithHandshakeTimeout(time.Minute), WithMaxHandshakes(16, 8))
	fillHandshakes(t, "127.0.0.3", ep.Router, 8)
	testwait.Until(t, "", func() bool { return srv.pendingHandshakes() == 8 })
	fillHandshakes(t, "127.0.0.2", ep.Router, 20) // 12 of them evicted, all its own
	testwait.Until(t, "", func() bool { return srv.pendingHandshakes() == 16 && srv.Stats().ConnsRefused == 12 })
	if n := srv.pendingFrom("127.0.0.3"); n != 8 {
		t.Fatalf("127.0.0.3 has %d pending handshakes, want 8 (evicted by another address)", n)
	}
	fillHandshakes(t, "127.0.0.4", ep.Router, 4) // the cap in all: the 4 oldest, from 127.0.0.3, go
	testwait.Until(t, "", func() bool { return srv.Stats().ConnsRefused == 16 })
	if a, b, c := srv.pendingFrom("127.0.0.3"), srv.pendingFrom("127.0.0.2"), srv.pendingFrom("127.0.0.4"); a != 4 || b != 8 || c != 4 {
		t.Fatalf("pending by address: %d, %d, %d; want 4, 8, 4", a, b, c)
	}
	if err := tryHandshake(zmtptest.DialRaw(t, ep.Router), "DEALER"); err != nil {
		t.Fatalf("new peer: %v", err)
	}
}

// TestGreetingTimeout: an accepted connection that does not send its
// greeting in time is dropped long before the handshake timeout; one that
// sent it has the handshake timeout for the rest.
func TestGreetingTimeout(t *testing.T) {
	t.Parallel()
	srv, ep := listen(t, &nopHandler{}, WithGreetingTimeout(time.Second), WithHandshakeTimeout(time.Minute))
	greeted := zmtptest.DialRaw(t, ep.Router)
	greeted.Write(t, zmtptest.Greeting())
	_ = greeted.Conn.SetReadDeadline(time.Now().Add(testWait))
	if _, err := io.ReadFull(greeted.R, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := zmtptest.ReadFrame(greeted.R); err != nil { // sent once our greeting was in
		t.Fatal(err)
	}
	silent := zmtptest.DialRaw(t, ep.Router)
	partial := zmtptest.DialRaw(t, ep.Pub)
	partial.Write(t, zmtptest.Greeting()[:63])
	start := time.Now()
	silent.WaitEOF(t)
	partial.WaitEOF(t)
	t.Logf("silent and partial greetings dropped after %v", time.Since(start))
	testwait.Until(t, "", func() bool { return srv.Stats().ConnsRefused == 2 })
	if n := srv.pendingHandshakes(); n != 1 {
		t.Fatalf("%d pending handshakes, want 1 (the greeted one)", n)
	}
	greeted.Write(t, zmtptest.Ready("DEALER"))
	testwait.Until(t, "", func() bool { return srv.pendingHandshakes() == 0 && srv.accepted.Load() == 1 })
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnLimits: a connection beyond a cap on established inbound ones
// (per address, per listener, in all) is taken, and one already established
// within that cap's scope is closed to make room, counted and logged: first
// one that never sent a message (an idle socket), then the one whose last
// message is oldest. So a process holding idle connections cannot lock out
// a new peer, even from the same address, and used connections stay.
func TestConnLimits(t *testing.T) {
	t.Parallel()
	taken := func(t *testing.T, p *zmtptest.Peer, typ string) {
		t.Helper()
		if err := tryHandshake(p, typ); err != nil {
			t.Fatalf("new connection refused: %v", err)
		}
	}
	works := func(t *testing.T, p *zmtptest.Peer, id uint64) {
		t.Helper()
		p.Write(t, zmtptest.Msg(request(id, "svc", "still here")...))
		if _, payload := readReply(t, p); payload != "still here" {
			t.Fatalf("established connection: %q", payload)
		}
	}
	serving := func() *transporttest.Recorder { r := transporttest.NewRecorder(); r.SetOnRequest(echo); return r }
	// Raw peers send no heartbeats: they must not be dropped as silent
	// while a subtest runs.
	quiet := WithPeerTimeout(time.Minute)

	t.Run("PerAddress", func(t *testing.T) {
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		srv, ep := listen(t, serving(), WithMaxConns(100, 100, 2), WithLogger(log), quiet)
		used := zmtptest.DialRaw(t, ep.Router)
		taken(t, used, "DEALER") // sends a request: used
		idle := zmtptest.DialRaw(t, ep.Pub)
		taken(t, idle, "SUB") // the address counts across listeners
		before := srv.Stats().ConnsRefused
		taken(t, zmtptest.DialRaw(t, ep.Router), "DEALER")
		idle.WaitEOF(t) // the idle one made room, not the used one
		testwait.Until(t, "", func() bool { return srv.Stats().ConnsRefused == before+1 })
		if s := logs.String(); !strings.Contains(s, "zmq connection evicted") || !strings.Contains(s, idle.Conn.LocalAddr().String()) {
			t.Errorf("eviction not logged with the remote address:\n%s", s)
		}
		works(t, used, 2)
		taken(t, dialRawFrom(t, "127.0.0.2", ep.Router), "DEALER") // another address: nobody goes
		works(t, used, 3)
		if n := srv.connsFrom("127.0.0.1"); n != 2 {
			t.Fatalf("%d connections from 127.0.0.1, want the cap, 2", n)
		}
	})
	t.Run("OldestUseGoes", func(t *testing.T) {
		srv, ep := listen(t, serving(), WithMaxConns(100, 100, 2), quiet)
		older, newer := zmtptest.DialRaw(t, ep.Router), zmtptest.DialRaw(t, ep.Router)
		taken(t, older, "DEALER")
		taken(t, newer, "DEALER")
		works(t, older, 2) // older is now the more recently used
		testwait.Until(t, "", func() bool { return srv.connsFrom("127.0.0.1") == 2 })
		taken(t, zmtptest.DialRaw(t, ep.Router), "DEALER")
		newer.WaitEOF(t)
		works(t, older, 3)
	})
	t.Run("PerListener", func(t *testing.T) {
		_, ep := listen(t, serving(), WithMaxConns(100, 2, 100), quiet)
		a, b := zmtptest.DialRaw(t, ep.Router), zmtptest.DialRaw(t, ep.Router)
		taken(t, a, "DEALER")
		taken(t, b, "DEALER")
		sub := zmtptest.DialRaw(t, ep.Pub)
		taken(t, sub, "SUB") // another listener: nobody goes
		taken(t, zmtptest.DialRaw(t, ep.Router), "DEALER")
		a.WaitEOF(t) // the oldest use on that listener
		works(t, b, 2)
	})
	t.Run("Total", func(t *testing.T) {
		_, ep := listen(t, serving(), WithMaxConns(3, 100, 100), quiet)
		a := zmtptest.DialRaw(t, ep.Router)
		taken(t, a, "DEALER")
		idle := dialRawFrom(t, "127.0.0.2", ep.Pub)
		taken(t, idle, "SUB")
		c := dialRawFrom(t, "127.0.0.3", ep.Router)
		taken(t, c, "DEALER")
		taken(t, dialRawFrom(t, "127.0.0.4", ep.Pub), "SUB")
		idle.WaitEOF(t)
		works(t, a, 2)
		works(t, c, 2)
	})
	t.Run("UnixIsOneAddress", func(t *testing.T) {
		_, ep := listen(t, serving(), WithMaxConns(100, 100, 1), quiet)
		if ep.LocalRouter == "" {
			t.Skip("no Unix sockets")
		}
		first := dialRawAddr(t, ep.LocalRouter)
		taken(t, first, "DEALER")
		taken(t, dialRawAddr(t, ep.LocalPub), "SUB")
		first.WaitEOF(t)
		tcp := zmtptest.DialRaw(t, ep.Router)
		taken(t, tcp, "DEALER") // TCP from 127.0.0.1 is another address
		works(t, tcp, 2)
	})
	t.Run("IdleFlood", func(t *testing.T) {
		// 40 idle connections against a cap of 8 from one address: each new
		// one takes the place of an idle one; the used one stays.
		_, ep := listen(t, serving(), WithMaxConns(100, 100, 8), quiet)
		used := zmtptest.DialRaw(t, ep.Router)
		taken(t, used, "DEALER")
		for range 40 {
			taken(t, zmtptest.DialRaw(t, ep.Pub), "SUB")
		}
		works(t, used, 2)
		fresh := zmtptest.DialRaw(t, ep.Router)
		taken(t, fresh, "DEALER")
		works(t, fresh, 2)
		works(t, used, 3)
	})
	t.Run("OutboundNotCounted", func(t *testing.T) {
		_, ep := listen(t, serving())
		cli, _ := listen(t, &nopHandler{}, WithMaxConns(1, 1, 1), WithUnixSockets(false))
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			_, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc"})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			cli.Disconnect(ep.Router)
		}
		if err := cli.Subscribe(ep.Pub, "t", transport.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLimitDefaults: the defaults are what the option docs say, and
// unusable values are refused.
func TestLimitDefaults(t *testing.T) {
	t.Parallel()
	c := defaultConfig()
	for _, d := range []struct {
		name      string
		got, want any
	}{
		{"greeting timeout", c.greetingTimeout, 500 * time.Millisecond},
		{"handshakes", c.maxHandshakes, 256},
		{"handshakes per address", c.maxHandshakesPerAddr, 64},
		{"conns", c.maxConns, 512},
		{"conns per listener", c.maxConnsPerListener, 256},
		{"conns per address", c.maxConnsPerAddr, 256},
		{"handshake timeout", c.handshakeTimeout, 2 * time.Second},
	} {
		if d.got != d.want {
			t.Errorf("default %s = %v, want %v", d.name, d.got, d.want)
		}
	}
	for _, o := range []Option{
		WithGreetingTimeout(0), WithMaxHandshakes(0, 1), WithMaxHandshakes(1, 0),
		WithMaxConns(0, 1, 1), WithMaxConns(1, 0, 1), WithMaxConns(1, 1, 0),
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%v: err = %v, want ErrInvalidOption", o, err)
		}
	}
}
