package zmq

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
)

// zmq4Open runs zmq4's NULL handshake over rw, as typ on the accepting
// side, with its panics turned into errors wrapping errPanic: the
// reference the tests hold this package's handshake to (it used to run
// zmq4.Open itself, behind a guard).
func zmq4Open(rw net.Conn, typ zmq4.SocketType) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: zmq4: %v", errPanic, p)
		}
	}()
	_, err = zmq4.Open(rw, null.Security(), typ, nil, true, nil)
	return err
}

// FuzzHandshakeMatchesZMQ4 holds this package's handshake to zmq4's: for
// any bytes a peer sends, in any role, both accept or both refuse, except
// where this package refuses by its own rules (frames over
// handshakeMaxFrame, reserved flags, READY metadata outside ZMTP's grammar,
// which the guard in front of zmq4 refused too) and where zmq4 panics
// (this package must refuse). Inputs whose READY claims more than
// handshakeMaxFrame never reach zmq4, which would allocate the claim.
func FuzzHandshakeMatchesZMQ4(f *testing.F) {
	g := ourGreeting[:]
	for _, st := range []string{"DEALER", "ROUTER", "REQ", "REP", "SUB", "XSUB", "PUB", "XPUB", "PAIR", "FOO", "dealer"} {
		f.Add(byte(0), append(bytes.Clone(g), readyFrame(st)...))
	}
	for _, v := range [][2]byte{{3, 1}, {2, 9}, {4, 0}} { // version 3.1, 2.9 (refused), 4.0
		gv := bytes.Clone(g)
		gv[10], gv[11] = v[0], v[1]
		f.Add(byte(1), append(gv, readyFrame("DEALER")...))
	}
	plain := bytes.Clone(g)
	copy(plain[12:32], "PLAIN")
	f.Add(byte(2), append(plain, readyFrame("PUB")...))
	f.Add(byte(3), append(bytes.Clone(g), 0x04, 0x06, 0x05, 'R', 'E', 'A', 'D', 'Y'))
	f.Add(byte(0), append(bytes.Clone(g), 0x05, 0x00, 0x00)) // READY with MORE, then a frame
	f.Add(byte(0), bytes.Clone(g[:40]))
	tr, err := New(WithUnixSockets(false))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tr.Close() })
	roles := [...]role{rolePubIn, roleRouterIn, roleDealer, roleSub}
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		r := roles[int(mode)%len(roles)]
		ours := tr.newConn(newScriptConn(data), "script", r).handshake(time.Time{}, time.Now().Add(time.Minute))
		if errors.Is(ours, errPanic) {
			t.Fatalf("handshake panicked: %v", ours)
		}
		if errors.Is(ours, errFrameTooLarge) || errors.Is(ours, errBadFlags) || errors.Is(ours, errBadMetadata) {
			return // refused by a rule of ours, before zmq4 would have seen it
		}
		ref := zmq4Open(newScriptConn(data), zmq4.SocketType(r.socketType()))
		switch {
		case errors.Is(ref, errPanic):
			if ours == nil {
				t.Fatalf("%v: accepted what zmq4 panics on (%v)", r, ref)
			}
		case (ours == nil) != (ref == nil):
			t.Fatalf("%v: ours %v, zmq4 %v", r, ours, ref)
		}
	})
}
