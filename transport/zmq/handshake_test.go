package zmq

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/colugo-go/colugo/transport"
)

// readyProps is a READY command with the given properties, in order.
func readyProps(kv ...string) []byte {
	body := append([]byte{5}, "READY"...)
	for i := 0; i+1 < len(kv); i += 2 {
		body = zmtpProp(body, kv[i], kv[i+1])
	}
	return zmtpFrame(flagCommand, body)
}

// readyRaw is a READY command with a hand-made metadata body.
func readyRaw(meta []byte) []byte {
	return zmtpFrame(flagCommand, append(append([]byte{5}, "READY"...), meta...))
}

// badReadies are READY commands that made zmq4 v0.17.0 panic (the process
// died) or that break the ZMTP grammar of properties.
var badReadies = []struct {
	name  string
	ready []byte
}{
	{"NoSocketType", readyProps("Identity", "")},
	{"EmptyMetadata", readyRaw(nil)},
	{"UnknownSocketType", readyProps("Socket-Type", "FOO", "Identity", "")},
	{"LowercaseSocketType", readyProps("Socket-Type", "dealer")},
	{"EmptySocketType", readyProps("Socket-Type", "")},
	{"UppercaseKey", readyProps("SOCKET-TYPE", "DEALER")}, // zmq4 files it under "SOCKET-TYPE"
	{"LastSocketTypeUnknown", readyProps("Socket-Type", "DEALER", "socket-type", "FOO")},
	{"KeyWithNUL", readyProps("Socket-Type\x00", "DEALER")},
	{"KeyNotASCII", readyProps("Socket-Type", "DEALER", "Ünïcode", "x")},
	{"KeyInvalidUTF8", readyProps("Socket-Type", "DEALER", "X-\xff\xfe", "x")},
	{"KeySpace", readyProps("Socket Type", "DEALER")},
	{"EmptyKey", readyRaw([]byte{0, 0, 0, 0, 0})},
	{"NameLengthIsRest", readyRaw([]byte{3, 'a', 'b', 'c'})},              // zmq4's own check lets it through to a panic
	{"ValueLengthCut", readyRaw([]byte{1, 'a', 0, 0})},                    // 2 of the 4 length bytes
	{"ValueTooLong", readyRaw([]byte{1, 'a', 0, 0, 0, 9, 'x'})},           // announces 9, has 1
	{"HugeValueLength", readyRaw([]byte{1, 'a', 0xff, 0xff, 0xff, 0xff})}, // 4 GiB
}

// TestBadReadyAccepted: a READY that used to crash the process (zmq4
// panicked in SocketType.IsCompatible or Property.Write) is refused on
// every listener, TCP and Unix, and the node keeps serving.
func TestBadReadyAccepted(t *testing.T) {
	t.Parallel()
	rec := newRec()
	rec.onRequest = echo
	srv, ep := listen(t, rec)
	cli, _ := listen(t, &nopHandler{}, WithUnixSockets(false))
	listeners := map[string]string{"router": ep.Router, "pub": ep.Pub}
	if ep.LocalRouter != "" {
		listeners["unix-router"], listeners["unix-pub"] = ep.LocalRouter, ep.LocalPub
	}
	for lname, addr := range listeners {
		for _, tc := range badReadies {
			t.Run(lname+"/"+tc.name, func(t *testing.T) {
				refused := srv.Stats().ConnsRefused
				p := dialRawAddr(t, addr)
				p.write(t, zmtpGreeting(), tc.ready)
				p.waitClosed(t)
				waitFor(t, func() bool { return srv.Stats().ConnsRefused > refused })
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if _, err := cli.Request(ctx, ep.Router, &transport.Message{Name: "svc", Payload: []byte("x")}); err != nil {
		t.Fatalf("node stopped serving: %v", err)
	}
}

// TestGoodReadyVariants: READYs that zmq4 handles are still accepted:
// property names are case-insensitive in ZMTP, and zmq4 title-cases them.
func TestGoodReadyVariants(t *testing.T) {
	t.Parallel()
	rec := newRec()
	rec.onRequest = echo
	_, ep := listen(t, rec)
	for _, ready := range [][]byte{
		readyProps("Socket-Type", "DEALER"),
		readyProps("socket-type", "DEALER", "identity", "me"),
		readyProps("sOcket-tYpe", "FOO", "Socket-Type", "DEALER"), // "sOcket-tYpe" is not zmq4's key: ignored
		readyProps("Socket-Type", "FOO", "socket-Type", "DEALER"), // the last one counts, as in zmq4
		readyProps("Identity", "", "Resource", "", "X-Colugo.v1+a_b", "x", "Socket-Type", "DEALER"),
	} {
		p := dialRaw(t, ep.Router)
		p.write(t, zmtpGreeting(), ready)
		_ = p.nc.SetReadDeadline(time.Now().Add(testWait))
		if _, err := io.ReadFull(p.r, make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readFrame(p.r); err != nil { // the server's READY
			t.Fatal(err)
		}
		p.send(t, request(1, "svc", "ok"))
		if h, payload := p.readReply(t); h.RequestID != 1 || payload != "ok" {
			t.Fatalf("reply %+v %q to %q", h, payload, ready)
		}
	}
}

// TestSocketTypeKeyMatchesZMQ4 checks isSocketTypeKey against zmq4 itself,
// for every case variant of "socket-type": zmq4's handshake succeeds exactly
// for the names isSocketTypeKey accepts (for the others it panicked).
func TestSocketTypeKeyMatchesZMQ4(t *testing.T) {
	t.Parallel()
	const key = "socket-type"
	var letters []int
	for i := range len(key) {
		if key[i] != '-' {
			letters = append(letters, i)
		}
	}
	accepted := 0
	for mask := range 1 << len(letters) {
		b := []byte(key)
		for j, i := range letters {
			if mask&(1<<j) != 0 {
				b[i] -= 'a' - 'A'
			}
		}
		err := rawOpen(append(zmtpGreeting(), readyProps(string(b), "DEALER")...))
		if got := isSocketTypeKey(b); got != (err == nil) || (!got && !errors.Is(err, errPanic)) {
			t.Errorf("%q: isSocketTypeKey %v, zmq4: %v", b, got, err)
		}
		if err == nil {
			accepted++
		}
	}
	if accepted != 4 {
		t.Errorf("%d variants accepted, want 4 ([sS]ocket-[tT]ype)", accepted)
	}
}

// rawOpen runs zmq4's handshake (the reference) as a ROUTER against a
// peer that sends peer, and returns its error: one wrapping errPanic where
// zmq4 panicked.
func rawOpen(peer []byte) error {
	return zmq4Open(newScriptConn(peer), zmq4.Router)
}

// TestZMQ4PanicContained: a panic inside the handshake (here from a
// net.Conn that panics, standing for a bug) fails the connection with
// errPanic instead of killing the process; an accepted one is counted as
// refused and logged at Warn.
func TestZMQ4PanicContained(t *testing.T) {
	t.Parallel()
	tr0, _ := listen(t, &nopHandler{}, WithUnixSockets(false))
	err := tr0.newConn(panicConn{newScriptConn(nil)}, "test", roleRouterIn).handshake(time.Time{}, time.Now().Add(testWait))
	if !errors.Is(err, errPanic) {
		t.Fatalf("err = %v, want errPanic", err)
	}

	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tr, _ := listen(t, &nopHandler{}, WithUnixSockets(false), WithLogger(log))
	tr.mu.Lock()
	in := tr.pendLocked(panicConn{newScriptConn(nil)}, "test", 1)
	tr.mu.Unlock()
	tr.serveInbound(in, roleRouterIn)
	if n := tr.Stats().ConnsRefused; n != 1 {
		t.Errorf("ConnsRefused = %d, want 1", n)
	}
	if s := logs.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, errPanic.Error()) {
		t.Errorf("panic not logged at Warn:\n%s", s)
	}
}

// panicConn panics on Write, as a zmq4 bug would in the handshake.
type panicConn struct{ *scriptConn }

func (panicConn) Write([]byte) (int, error) { panic("boom") }

// TestBadReadyDialled: a node that dials a router or publisher answering
// with a crashing READY gets an error (request) or retries (subscription),
// and does not die.
func TestBadReadyDialled(t *testing.T) {
	t.Parallel()
	rec := newRec()
	cli, _ := listen(t, rec, WithUnixSockets(false))
	for _, tc := range badReadies {
		t.Run(tc.name, func(t *testing.T) {
			addr, served := fakeServer(t, append(zmtpGreeting(), tc.ready...))
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			_, err := cli.Request(ctx, addr, &transport.Message{Name: "svc"})
			if !errors.Is(err, transport.ErrPeerLost) || !strings.Contains(err.Error(), "READY") {
				t.Fatalf("request: %v", err)
			}
			if err := cli.Subscribe(addr, "t", transport.SubscribeOptions{}); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the dial of the request, then one of the subscription
				select {
				case <-served:
				case <-time.After(testWait):
					t.Fatal("subscription did not dial")
				}
			}
			_ = cli.Unsubscribe(addr, "t")
		})
	}
}

// fakeServer accepts on loopback and answers every connection with answer,
// then drains it until the client closes. Each accepted connection is
// reported on the returned channel (dropped when nobody listens).
func fakeServer(t *testing.T, answer []byte) (string, <-chan struct{}) {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				stop := context.AfterFunc(t.Context(), func() { _ = nc.Close() })
				defer stop()
				_, _ = nc.Write(answer)
				_, _ = io.Copy(io.Discard, nc)
				select {
				case served <- struct{}{}:
				default:
				}
			})
		}
	})
	return ln.Addr().String(), served
}

// dialRawAddr is dialRaw for a TCP "host:port" or a "unix:@name" address.
func dialRawAddr(t *testing.T, addr string) *rawPeer {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, unixScheme) {
		network, addr = "unix", addr[len(unixScheme):]
	}
	var d net.Dialer
	nc, err := d.DialContext(t.Context(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawPeer{nc: nc, r: bufio.NewReader(nc)}
}
