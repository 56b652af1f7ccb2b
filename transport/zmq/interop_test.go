package zmq

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
	"github.com/colugo-go/colugo/transport/wire"
)

const python = "/usr/bin/python3" // Debian's, with python3-zmq; not a pyenv one

func needPyzmq(t *testing.T) {
	t.Helper()
	if err := exec.CommandContext(t.Context(), python, "-c", "import zmq").Run(); err != nil {
		t.Skipf("%s cannot import zmq (install python3-zmq): %v", python, err)
	}
}

// TestInteropPyzmq: libzmq peers talk to a transport unchanged. A pyzmq SUB
// on "topic\x00" receives 3-frame messages and not "topicX"; a pyzmq DEALER
// gets replies, and its connection survives an idle second longer than the
// peer timeout, so libzmq answers our PINGs.
func TestInteropPyzmq(t *testing.T) {
	t.Parallel()
	needPyzmq(t)
	rec := transporttest.NewRecorder()
	var requests atomic.Int64
	rec.SetOnRequest(func(m *transport.Message, rw transport.ReplyWriter) {
		requests.Add(1)
		if m.Header.Sender != "pyzmq" || m.Header.Codec != "raw" {
			t.Errorf("request header from python: %+v", m.Header)
		}
		if m.Header.Ext != "" { // dealer-ext: answer with what its metadata said, and metadata of our own
			var tenant string
			for rest := m.Header.Ext; rest != ""; {
				typ, v, r, ok := wire.NextExt(rest)
				if !ok {
					t.Errorf("python's extensions do not parse: %q", m.Header.Ext)
					break
				}
				rest = r
				if k, val, ok := wire.MetadataEntry(v); typ == wire.ExtMetadata && ok && k == "tenant" {
					tenant = val
				}
			}
			_ = rw.Reply(&transport.Message{Name: m.Name, Header: transport.Header{
				Kind: transport.KindReply, Codec: "raw", RequestID: m.Header.RequestID,
				Ext: string(wire.AppendMetadataEntry(nil, "reply", "yes")),
			}, Payload: []byte("tenant=" + tenant)})
			return
		}
		echo(m, rw)
	})
	srv, ep := listen(t, rec, WithHeartbeatInterval(50*time.Millisecond), WithPeerTimeout(300*time.Millisecond))

	t.Run("SUB", func(t *testing.T) {
		const n = 200
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, "testdata/interop.py", "sub", ep.Pub, strconv.Itoa(n))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 4)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		if l := <-lines; l != "ready" {
			t.Fatalf("python: %q", l)
		}
		// Publish until python has had n: it subscribes asynchronously.
		var last string
		for seq := uint64(1); ; seq++ {
			_ = publishNow(srv, pubMsg("topicX", seq, []byte("never")))
			_ = publishNow(srv, pubMsg("topic", seq, []byte("payload")))
			select {
			case l, ok := <-lines:
				last = l
				if !ok || !strings.HasPrefix(l, "sub ok") {
					t.Fatalf("python: %q", l)
				}
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("python: %v (%s)", err, last)
		}
		t.Log("python:", last)
	})

	t.Run("DEALER", func(t *testing.T) {
		before := srv.accepted.Load()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, "testdata/interop.py", "dealer", ep.Router).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		want := "dealer ok 42 hello 0\ndealer ok 43 hello 1\n"
		if string(out) != want {
			t.Fatalf("python printed %q, want %q", out, want)
		}
		if n := srv.accepted.Load() - before; n != 1 {
			t.Errorf("the DEALER connected %d times; want 1 (its link idled 1 s with a 300 ms peer timeout)", n)
		}
		if requests.Load() != 2 {
			t.Errorf("%d requests", requests.Load())
		}
	})

	// Header extensions as the README describes them: python encodes a
	// metadata entry and a type it expects us to skip, and decodes ours.
	t.Run("DEALERExtensions", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, "testdata/interop.py", "dealer-ext", ep.Router).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		if want := "dealer-ext ok tenant=acme reply metadata reply=yes\n"; string(out) != want {
			t.Fatalf("python printed %q, want %q", out, want)
		}
	})
}
