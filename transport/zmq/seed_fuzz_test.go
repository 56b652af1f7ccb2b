package zmq

import (
	"bytes"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport"
)

// fuzzFrames turns fuzz input into the frames of one message: data split
// at '|' (so empty frames are easy to reach), at most 60 of them (past
// maxFrames a connection is closed, which is not what is fuzzed here).
func fuzzFrames(data []byte) [][]byte {
	frames := bytes.Split(data, []byte("|"))
	if len(frames) > 60 {
		frames = frames[:60]
	}
	return frames
}

// FuzzSeedEnvelope checks splitSeedRequest, appendEnvelope and
// parseSeedReply on arbitrary frames: a request splits at its first empty
// frame, with an envelope of non-empty frames within seedMaxEnvelope;
// the reply prefix re-encodes exactly the envelope and the delimiter.
func FuzzSeedEnvelope(f *testing.F) {
	for _, s := range []string{"", "|body", "abcd||body", "a|b||c", "no delimiter", "||", "x|y|z|", "12345678||r"} {
		f.Add([]byte(s))
	}
	f.Add(append(bytes.Repeat([]byte("e"), seedMaxEnvelope+1), "||big"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := fuzzFrames(data)
		env, body, ok := splitSeedRequest(frames)
		first := slices.IndexFunc(frames, func(f []byte) bool { return len(f) == 0 })
		envLen := 0
		if first >= 0 {
			for _, f := range frames[:first] {
				envLen += len(f)
			}
		}
		if want := first >= 0 && envLen <= seedMaxEnvelope; ok != want {
			t.Fatalf("split %q: ok %v, want %v", frames, ok, want)
		}
		if !ok {
			return
		}
		if len(env) != first || len(env)+1+len(body) != len(frames) {
			t.Fatalf("split %q into %d + 1 + %d", frames, len(env), len(body))
		}
		pre := appendEnvelope(nil, env)
		var back [][]byte
		for b := pre; len(b) > 0; {
			flags, size, n := parseFrameHeader(b)
			if n == 0 || flags&flagMore == 0 || uint64(len(b)-n) < size {
				t.Fatalf("envelope %q: bad frame at %q", pre, b)
			}
			back = append(back, b[n:n+int(size)])
			b = b[n+int(size):]
		}
		if len(back) != len(env)+1 || len(back[len(env)]) != 0 {
			t.Fatalf("envelope %q re-encoded as %q", env, back)
		}
		for i := range env {
			if !bytes.Equal(back[i], env[i]) {
				t.Fatalf("envelope %q re-encoded as %q", env, back)
			}
		}
		if id, b, ok := parseSeedReply(frames); ok != (len(frames) == 3 && len(frames[0]) == 8 && len(frames[1]) == 0) ||
			(ok && (!bytes.Equal(b, frames[2]) || id == 0 && !bytes.Equal(frames[0], make([]byte, 8)))) {
			t.Fatalf("parseSeedReply(%q) = %d, %q, %v", frames, id, b, ok)
		}
	})
}

// FuzzSeedServe sends arbitrary requests to a real seed server over TCP
// and checks what comes back: the request's envelope and the echo (or
// the error reply for a body of other than one frame), or nothing for a
// request that cannot be answered, after which a sentinel request is
// answered. Each input gets a transport of its own, so that goleak sees
// nothing left over.
func FuzzSeedServe(f *testing.F) {
	for _, s := range []string{"|body", "abcd||body", "a|b||c|d", "no delimiter", "||", "id||"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, _ := listen(t, &nopHandler{}, WithUnixSockets(false))
		srv, err := tr.SeedServe(seedEchoHandler, transport.SeedServeOptions{ErrorReply: []byte("ERR")})
		if err != nil {
			t.Fatal(err)
		}
		p := zmtptest.Dial(t, seedAddr(srv.Port()), "DEALER")
		frames := fuzzFrames(data)
		env, body, ok := splitSeedRequest(frames)
		p.Write(t, zmtptest.Msg(frames...))
		if !ok { // dropped: the sentinel's is the next reply
			p.Write(t, zmtptest.Msg([]byte("sentinel"), nil, []byte("s")))
			env, body = [][]byte{[]byte("sentinel")}, [][]byte{[]byte("s")}
		}
		want := append(slices.Clone(env), nil, []byte("ERR"))
		if len(body) == 1 && utf8.Valid(body[0]) { // a non-UTF-8 echo is answered with the error reply
			want[len(want)-1] = append([]byte("echo:"), body[0]...)
		}
		_ = p.Conn.SetReadDeadline(time.Now().Add(testWait))
		got := p.Msg(t)
		if len(got) != len(want) {
			t.Fatalf("request %q: reply %q, want %q", frames, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("request %q: reply %q, want %q", frames, got, want)
			}
		}
	})
}
