package zmtptest

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFrames(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("x"), 300)
	r := bufio.NewReader(bytes.NewReader(Msg([]byte("a"), long, nil)))
	for i, want := range []struct {
		flags byte
		body  []byte
	}{{More, []byte("a")}, {More | Long, long}, {0, []byte{}}} {
		fl, body, err := ReadFrame(r)
		if err != nil || fl != want.flags || !bytes.Equal(body, want.body) {
			t.Fatalf("frame %d: %#x %q %v; want %#x %q", i, fl, body, err, want.flags, want.body)
		}
	}
	if g := Greeting(); len(g) != 64 || g[0] != 0xFF || g[9] != 0x7F || g[10] != 3 || string(g[12:16]) != "NULL" {
		t.Fatalf("greeting % x", g)
	}
	huge := append([]byte{Long}, 0, 0, 0, 0, 0x10, 0, 0, 1) // 256 MiB + 1
	if _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(huge))); err == nil {
		t.Fatal("a frame over MaxFrame was read")
	}
}

// TestHandshakeWithItself: two Peers on a loopback connection complete
// the handshake and exchange a message.
func TestHandshakeWithItself(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- nc
	}()
	pa := DialRaw(t, ln.Addr().String())
	nc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer nc.Close()
	pb := NewPeer(nc)
	// TCP buffers both greetings and READYs: each side writes, then reads.
	pb.Write(t, Greeting(), Ready("ROUTER"))
	pa.Handshake(t, "DEALER")
	if _, err := pb.R.Discard(64); err != nil {
		t.Fatal(err)
	}
	if fl, body, err := pb.Frame(); err != nil || fl != Command || !bytes.HasPrefix(body, []byte("\x05READY")) {
		t.Fatalf("READY: %#x %q %v", fl, body, err)
	}
	pb.Write(t, Msg([]byte("x"), []byte("y")))
	if f := pa.Msg(t); len(f) != 2 || string(f[0]) != "x" || string(f[1]) != "y" {
		t.Fatalf("message %q", f)
	}
	_ = nc.Close()
	pa.WaitEOF(t)
}

func FuzzReadFrame(f *testing.F) {
	f.Add(Msg([]byte("a"), bytes.Repeat([]byte("x"), 300)))
	f.Add([]byte{Long, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 100 {
			if _, _, err := ReadFrame(r); err != nil {
				return
			}
		}
	})
}
