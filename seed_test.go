package colugo_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/testwait"
)

// Seed compatibility with pyzmq stand-ins for the seed's sockets
// (testdata/seedpeer.py) on loopback; a fake directory plays mDNS, which
// integration/seed_test.go runs for real inside network namespaces.

// fakeSeedDir is a discovery.SeedDirectory the test drives.
type fakeSeedDir struct {
	events chan discovery.SeedEvent
	mu     sync.Mutex
	recs   map[string]fakeSeedRecord // by name
	closed bool
	n      int
}

type fakeSeedRecord struct {
	kind discovery.SeedKind
	port int
	uuid string
}

func newFakeSeedDir() *fakeSeedDir {
	return &fakeSeedDir{events: make(chan discovery.SeedEvent, 64), recs: map[string]fakeSeedRecord{}}
}

func (d *fakeSeedDir) Start() (<-chan discovery.SeedEvent, error) { return d.events, nil }

func (d *fakeSeedDir) Announce(name string, kind discovery.SeedKind, port int) (func() error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("closed")
	}
	d.n++
	r := fakeSeedRecord{kind: kind, port: port, uuid: fmt.Sprintf("uuid-%d", d.n)}
	d.recs[name] = r
	var once sync.Once
	return func() error {
		once.Do(func() {
			d.mu.Lock()
			if d.recs[name] == r {
				delete(d.recs, name)
			}
			d.mu.Unlock()
		})
		return nil
	}, nil
}

func (d *fakeSeedDir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		clear(d.recs)
		close(d.events)
	}
	return nil
}

// record is the record announced for name, if any.
func (d *fakeSeedDir) record(name string) (fakeSeedRecord, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.recs[name]
	return r, ok
}

func seedSocket(topic string, kind discovery.SeedKind, port int, uuid string) discovery.SeedSocket {
	return discovery.SeedSocket{Instance: "_" + topic + "._" + uuid, Topic: topic, Kind: kind, UUID: uuid,
		Addr: "127.0.0.1:" + strconv.Itoa(port)}
}

// seedPeer is a running testdata/seedpeer.py.
type seedPeer struct {
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

func startSeedPeer(t *testing.T, args ...string) *seedPeer {
	t.Helper()
	needPython(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	cmd := exec.CommandContext(ctx, python, append([]string{"testdata/seedpeer.py"}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &seedPeer{stdin: in, lines: make(chan string, 16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		err := cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		p.done <- err
	}()
	t.Cleanup(func() {
		_ = in.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("seedpeer %v did not end", args)
		}
		cancel()
	})
	return p
}

// line waits for the next line that starts with prefix and returns it.
func (p *seedPeer) line(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("seedpeer ended before a %q line: %v", prefix, <-p.done)
			}
			if strings.HasPrefix(l, "FAIL") {
				t.Fatalf("seedpeer: %s", l)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q line from seedpeer", prefix)
		}
	}
}

func (p *seedPeer) port(t *testing.T) int {
	t.Helper()
	port, err := strconv.Atoi(strings.TrimPrefix(p.line(t, "port "), "port "))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func (p *seedPeer) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func seedNode(t *testing.T, dir *fakeSeedDir, cfg colugo.SeedConfig, opts ...colugo.NodeOption) *colugo.Node {
	t.Helper()
	cfg.Directory = dir
	return hostileNode(t, "seedcompat", t.TempDir(), append(opts, colugo.WithSeedCompat(cfg))...)
}

const seedN = 1000

// TestSeedSubscribeFromSeedPublisher: a seed publisher's frames reach a
// Subscribe of its topic, all of them in order, as Raw text and as JSON.
func TestSeedSubscribeFromSeedPublisher(t *testing.T) {
	dir := newFakeSeedDir()
	node := seedNode(t, dir, colugo.SeedConfig{})
	py := startSeedPeer(t, "pub", strconv.Itoa(seedN))
	port := py.port(t)
	subCtx, unsubscribe := context.WithCancel(t.Context())
	defer unsubscribe()
	msgs, err := colugo.Subscribe[[]byte](subCtx, node, "seed/chatter", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(4*seedN))
	if err != nil {
		t.Fatal(err)
	}
	// A colugo-go node's seed-style record is ignored: that node is reached
	// on colugo's own wire (the events of one directory arrive in order,
	// so the next one's effect shows that this one was handled).
	goRec := seedSocket("seed/chatter", discovery.SeedPub, port, "go1")
	goRec.Colugo = true
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: goRec}
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: seedSocket("seed/chatter", discovery.SeedPub, port, "u1")}
	start := time.Now()
	first := recvSeed(t, msgs)
	t.Logf("first seed message %q after %v", first, time.Since(start))
	py.say(t, "go")
	want := 0
	for want < seedN {
		m := recvSeed(t, msgs)
		switch {
		case string(m) == "warm":
		case string(m) == "m "+strconv.Itoa(want):
			want++
		default:
			t.Fatalf("got %q, want m %d", m, want)
		}
	}
	if st := node.Stats().Seed; st.Sockets != 1 || st.Connected != 1 || st.Received < seedN {
		t.Errorf("Stats().Seed = %+v, want 1 socket, 1 connected and %d received", st, seedN)
	}
	// No subscription, no connection; a new one connects again.
	unsubscribe()
	testwait.Until(t, "the unsubscribed connection to go", func() bool { return node.Stats().Seed.Connected == 0 })
	if _, err = colugo.Subscribe[[]byte](t.Context(), node, "seed/chatter", colugo.WithCodec(codec.Raw{})); err != nil {
		t.Fatal(err)
	}
	if st := node.Stats().Seed; st.Connected != 1 {
		t.Errorf("resubscribed: Stats().Seed = %+v, want 1 connected", st)
	}
	// Its record goes: the node disconnects.
	dir.events <- discovery.SeedEvent{Kind: discovery.Left, Socket: seedSocket("seed/chatter", discovery.SeedPub, port, "u1")}
	testwait.Until(t, "the seed socket to go", func() bool { st := node.Stats().Seed; return st.Sockets == 0 && st.Connected == 0 })
}

func recvSeed[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("no message from the seed publisher")
	}
	panic("unreachable")
}

// TestSeedPublishToSeedSubscriber: a SeedVisible publisher is announced
// and a seed subscriber gets every message; a payload that is not UTF-8 is
// refused and counted, never sent (the seed would stop receiving).
func TestSeedPublishToSeedSubscriber(t *testing.T) {
	dir := newFakeSeedDir()
	node := seedNode(t, dir, colugo.SeedConfig{})
	pub, err := colugo.NewPublisher[[]byte](node, "seed/out", colugo.WithCodec(codec.Raw{}), colugo.SeedVisible())
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := dir.record("seed/out")
	if !ok || rec.kind != discovery.SeedPub || rec.port == 0 {
		t.Fatalf("record %+v %v, want a pub record with a port", rec, ok)
	}
	py := startSeedPeer(t, "sub", strconv.Itoa(rec.port), strconv.Itoa(seedN))
	ready := make(chan struct{})
	go func() { py.line(t, "ready"); close(ready) }()
	testwait.Until(t, "the seed subscriber", func() bool {
		_ = pub.Publish(t.Context(), []byte("warm"))
		select {
		case <-ready:
			return true
		default:
			return false
		}
	})
	if err := pub.Publish(t.Context(), []byte{0xff, 0xfe}); err != nil {
		t.Fatal(err) // refused for the seed only: colugo subscribers may take any bytes
	}
	for i := range seedN {
		if err := pub.Publish(t.Context(), []byte("m "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	py.line(t, "got "+strconv.Itoa(seedN))
	st := node.Stats().Seed
	if st.Refused != 1 || st.Sent < seedN {
		t.Errorf("Stats().Seed = %+v, want 1 refused, %d sent", st, seedN)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := dir.record("seed/out"); ok {
		t.Error("the record outlived the publisher")
	}
}

type seedSum struct {
	A, B int
}

// TestSeedClientRequests: a seed request client gets every answer from a
// SeedVisible service, and an answer (the error reply) when the handler
// fails or overruns, within the budget.
func TestSeedClientRequests(t *testing.T) {
	dir := newFakeSeedDir()
	node := seedNode(t, dir, colugo.SeedConfig{ReplyBudget: 300 * time.Millisecond, ErrorReply: []byte(`{"error":true}`)})
	_, err := colugo.Serve(node, "math/add", func(ctx context.Context, r seedSum) (int, error) {
		switch {
		case r.A < 0:
			return 0, errors.New("negative")
		case r.A == 99:
			<-ctx.Done() // overruns: the budget answers
			return 0, ctx.Err()
		}
		return r.A + r.B, nil
	}, colugo.SeedVisible())
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := dir.record("math/add")
	if !ok || rec.kind != discovery.SeedRep {
		t.Fatalf("record %+v %v, want a rep record", rec, ok)
	}
	port := strconv.Itoa(rec.port)
	start := time.Now()
	py := startSeedPeer(t, "req", port, strconv.Itoa(seedN), `{"A":2,"B":3}`)
	if l := py.line(t, "reply "); l != "reply 5" {
		t.Errorf("first reply %q, want 5", l)
	}
	py.line(t, "replies "+strconv.Itoa(seedN))
	t.Logf("%d seed requests answered in %v", seedN, time.Since(start))
	for _, body := range []string{`{"A":-1}`, `{"A":99}`, `not json`} {
		py := startSeedPeer(t, "req", port, "1", body)
		if l := py.line(t, "reply "); l != `reply {"error":true}` {
			t.Errorf("%s: %q, want the error reply", body, l)
		}
	}
	if st := node.Stats().Seed; st.Served < seedN || st.Refused < 3 {
		t.Errorf("Stats().Seed = %+v, want %d served and 3 refused", st, seedN)
	}
}

// TestSeedRequestsToSeedServer: Request reaches a seed reply server, round
// robin with a colugo server of the same name, and a silent seed server
// fails only its own requests, by their deadline.
func TestSeedRequestsToSeedServer(t *testing.T) {
	dir := newFakeSeedDir()
	node := seedNode(t, dir, colugo.SeedConfig{})
	echo := startSeedPeer(t, "rep", "echo")
	ep := echo.port(t)
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: seedSocket("seed/echo", discovery.SeedRep, ep, "e1")}
	ctx := t.Context()
	if err := node.WaitServers(ctx, "seed/echo", 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range seedN {
		want := "hello " + strconv.Itoa(i)
		got, err := colugo.Request[string, string](ctx, node, "seed/echo", want)
		if err != nil || got != want {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
	}
	t.Logf("%d requests to a seed server in %v", seedN, time.Since(start))

	// A colugo server of the same name joins the rotation and RequestAll.
	srv, err := colugo.Serve(node, "seed/echo", func(_ context.Context, s string) (string, error) { return "go:" + s, nil })
	if err != nil {
		t.Fatal(err)
	}
	replies, err := colugo.RequestAll[string, string](ctx, node, "seed/echo", "all")
	if err != nil || len(replies) != 2 {
		t.Fatalf("RequestAll: %v, %v: want 2 replies", replies, err)
	}
	got := map[string]bool{}
	for _, r := range replies {
		if r.Err != nil {
			t.Fatalf("RequestAll: %s: %v", r.From.ID, r.Err)
		}
		got[r.Value] = true
	}
	if !got["all"] || !got["go:all"] {
		t.Errorf("RequestAll = %v: want the seed's and the colugo server's reply", got)
	}
	seen := map[string]int{}
	for range 10 {
		v, err := colugo.Request[string, string](ctx, node, "seed/echo", "rr")
		if err != nil {
			t.Fatal(err)
		}
		seen[v]++
	}
	if seen["rr"] != 5 || seen["go:rr"] != 5 {
		t.Errorf("round robin over a colugo and a seed server: %v, want 5 each", seen)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	// A silent seed server beside the echo one: its requests end by their
	// deadline, the echo server's are answered meanwhile.
	silent := startSeedPeer(t, "rep", "silent")
	sp := silent.port(t)
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: seedSocket("seed/echo", discovery.SeedRep, sp, "s1")}
	if err := node.WaitServers(ctx, "seed/echo", 2); err != nil {
		t.Fatal(err)
	}
	var ok, timedOut int
	for i := range 20 {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		got, err := colugo.Request[string, string](rctx, node, "seed/echo", "x"+strconv.Itoa(i))
		cancel()
		switch {
		case err == nil && got == "x"+strconv.Itoa(i):
			ok++
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		default:
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
	}
	if ok != 10 || timedOut != 10 {
		t.Errorf("%d answered, %d timed out: want 10 and 10 (round robin over two servers)", ok, timedOut)
	}
	dir.events <- discovery.SeedEvent{Kind: discovery.Left, Socket: seedSocket("seed/echo", discovery.SeedRep, sp, "s1")}
	testwait.Until(t, "the silent server to go", func() bool { return node.Stats().Seed.Sockets == 1 })
	for i := range 10 {
		if _, err := colugo.Request[string, string](ctx, node, "seed/echo", "y"); err != nil {
			t.Fatalf("request %d after the silent server left: %v", i, err)
		}
	}
	if st := node.Stats().Seed; st.Requests < seedN+36 {
		t.Errorf("Stats().Seed.Requests = %d, want %d", st.Requests, seedN+36)
	}
}

// TestSeedBadPublisher: 3-frame messages and non-UTF-8 frames from a seed
// publisher are dropped or decoded as any payload (never a crash); the
// good frame after them arrives.
func TestSeedBadPublisher(t *testing.T) {
	dir := newFakeSeedDir()
	node := seedNode(t, dir, colugo.SeedConfig{})
	py := startSeedPeer(t, "badpub")
	port := py.port(t)
	msgs, err := colugo.Subscribe[string](t.Context(), node, "seed/bad", colugo.WithBuffer(1024))
	if err != nil {
		t.Fatal(err)
	}
	dir.events <- discovery.SeedEvent{Kind: discovery.Joined, Socket: seedSocket("seed/bad", discovery.SeedPub, port, "b1")}
	// Nothing decodes as a JSON string until "m 0", which does not either:
	// the JSON codec refuses all, counted as decode errors.
	testwait.Until(t, "decode errors", func() bool { return node.Stats().Topics["seed/bad"].DecodeErrors > 10 })
	py.say(t, "go")
	py.line(t, "sent 1")
	select {
	case m := <-msgs:
		t.Fatalf("got %q: nothing the seed sent is JSON", m)
	default:
	}
}

// TestSeedOptions: what seed compatibility refuses.
func TestSeedOptions(t *testing.T) {
	dir := newFakeSeedDir()
	t.Run("visible without compat", func(t *testing.T) {
		node := hostileNode(t, "plain", t.TempDir())
		if _, err := colugo.NewPublisher[string](node, "a", colugo.SeedVisible()); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("NewPublisher: %v, want ErrInvalidOption", err)
		}
		if _, err := colugo.Serve(node, "a", add, colugo.SeedVisible()); !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("Serve: %v, want ErrInvalidOption", err)
		}
	})
	t.Run("names", func(t *testing.T) {
		node := seedNode(t, dir, colugo.SeedConfig{})
		for _, name := range []string{"with_underscore", strings.Repeat("x", colugo.MaxSeedName+1), "a..b", ".a", "a.", "é", "a b"} {
			if _, err := colugo.NewPublisher[string](node, name, colugo.SeedVisible()); !errors.Is(err, colugo.ErrInvalidOption) {
				t.Errorf("NewPublisher(%q): %v, want ErrInvalidOption", name, err)
			}
			if _, err := colugo.Serve(node, name, add, colugo.SeedVisible()); !errors.Is(err, colugo.ErrInvalidOption) {
				t.Errorf("Serve(%q): %v, want ErrInvalidOption", name, err)
			}
		}
		if _, err := colugo.NewPublisher[string](node, strings.Repeat("x", colugo.MaxSeedName), colugo.SeedVisible()); err != nil {
			t.Errorf("a %d-byte name: %v", colugo.MaxSeedName, err)
		}
	})
	t.Run("key", func(t *testing.T) {
		key := make([]byte, 32)
		_, err := colugo.NewNode("k", colugo.WithDiscovery(discovery.Static()), colugo.WithKey(key), colugo.WithSeedCompat(colugo.SeedConfig{Directory: newFakeSeedDir()}))
		if !errors.Is(err, colugo.ErrInvalidOption) {
			t.Errorf("a keyed node: %v, want ErrInvalidOption", err)
		}
		n, err := colugo.NewNode("k", colugo.WithDiscovery(discovery.Static()), colugo.WithKey(key),
			colugo.WithSeedCompat(colugo.SeedConfig{Directory: newFakeSeedDir(), AllowPlaintext: true}))
		if err != nil {
			t.Fatalf("a keyed node with AllowPlaintext: %v", err)
		}
		_ = n.Close()
	})
	t.Run("default directory off the network", func(t *testing.T) {
		t.Setenv(colugo.EnvDiscovery, "local")
		_, err := colugo.NewNode("d", colugo.WithSeedCompat(colugo.SeedConfig{}))
		if !errors.Is(err, colugo.ErrInvalidOption) || !strings.Contains(err.Error(), colugo.EnvDiscovery) {
			t.Errorf("COLUGO_DISCOVERY=local: %v, want ErrInvalidOption naming it", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		for _, c := range []colugo.SeedConfig{{ReplyBudget: -1}, {ErrorReply: []byte{0xff}}} {
			c.Directory = newFakeSeedDir()
			if _, err := colugo.NewNode("c", colugo.WithDiscovery(discovery.Static()), colugo.WithSeedCompat(c)); !errors.Is(err, colugo.ErrInvalidOption) {
				t.Errorf("%+v: %v, want ErrInvalidOption", c, err)
			}
		}
	})
	t.Run("default budget", func(t *testing.T) {
		// A handler that never returns: the default budget answers the
		// seed client (empty error reply) before its 2 s run out.
		dir := newFakeSeedDir()
		node := seedNode(t, dir, colugo.SeedConfig{})
		if _, err := colugo.Serve(node, "slow", func(ctx context.Context, _ string) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}, colugo.SeedVisible()); err != nil {
			t.Fatal(err)
		}
		rec, _ := dir.record("slow")
		start := time.Now()
		py := startSeedPeer(t, "req", strconv.Itoa(rec.port), "1", `"x"`)
		if l := py.line(t, "reply"); l != "reply " && l != "reply" {
			t.Errorf("got %q, want the empty error reply", l)
		}
		if d := time.Since(start); d < colugo.DefaultSeedReplyBudget {
			t.Errorf("answered after %v, before the %v budget", d, colugo.DefaultSeedReplyBudget)
		}
	})
}
