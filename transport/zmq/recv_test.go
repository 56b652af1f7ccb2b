package zmq

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
)

// TestRecvSubscribeCommand: a ZMTP 3.1 SUBSCRIBE command (as newer libzmq
// sends) subscribes like the 3.0 subscription message, CANCEL withdraws.
func TestRecvSubscribeCommand(t *testing.T) {
	t.Parallel()
	pub, ep := listen(t, &nopHandler{})
	p := zmtptest.DialRaw(t, ep.Pub)
	p.Handshake(t, "SUB")
	p.Write(t, zmtptest.Frame(flagCommand, append([]byte{9}, "SUBSCRIBE"+"news\x00"...)))
	testwait.Until(t, "", func() bool { return pub.Subscribers("news") == 1 })
	if err := publishNow(pub, pubMsg("news", 1, []byte("hello"))); err != nil {
		t.Fatal(err)
	}
	_ = p.Conn.SetReadDeadline(time.Now().Add(testWait))
	var frames [][]byte
	for {
		fl, body, err := zmtptest.ReadFrame(p.R)
		if err != nil {
			t.Fatal(err)
		}
		if fl&flagCommand != 0 {
			continue
		}
		frames = append(frames, body)
		if fl&flagMore == 0 {
			break
		}
	}
	if len(frames) != 3 || string(frames[0]) != "news\x00" || string(frames[2]) != "hello" {
		t.Fatalf("got %q", frames)
	}
	p.Write(t, zmtptest.Frame(flagCommand, append([]byte{6}, "CANCEL"+"news\x00"...)))
	testwait.Until(t, "", func() bool { return pub.Subscribers("news") == 0 })
}

// TestRecvCommandInsideMessage: a command frame after a data frame with
// MORE, or a command with MORE, ends the connection (as in zmq4's reader).
func TestRecvCommandInsideMessage(t *testing.T) {
	t.Parallel()
	_, ep := listen(t, &nopHandler{})
	ping := append([]byte{4}, "PING\x00\x00"...)
	for _, b := range [][]byte{
		append(zmtptest.Frame(flagMore, []byte("svc\x00")), zmtptest.Frame(flagCommand, ping)...),
		zmtptest.Frame(flagCommand|flagMore, ping),
		zmtptest.Frame(flagCommand, nil),            // empty command
		zmtptest.Frame(flagCommand, []byte{9, 'P'}), // name longer than the body
	} {
		p := zmtptest.DialRaw(t, ep.Router)
		p.Handshake(t, "DEALER")
		p.Write(t, b)
		p.WaitEOF(t)
	}
}

// TestRecvPingAnswered: a PING gets an empty PONG, as zmq4 answers.
func TestRecvPingAnswered(t *testing.T) {
	t.Parallel()
	_, ep := listen(t, &nopHandler{})
	p := zmtptest.DialRaw(t, ep.Router)
	p.Handshake(t, "DEALER")
	p.Write(t, zmtptest.Frame(flagCommand, append([]byte{4}, "PING\x00\x0actx"...)))
	_ = p.Conn.SetReadDeadline(time.Now().Add(testWait))
	for {
		fl, body, err := zmtptest.ReadFrame(p.R)
		if err != nil {
			t.Fatal(err)
		}
		if fl&flagCommand != 0 && string(body) == "\x04PONG" {
			return
		}
	}
}
