package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/codec/protobuf"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/mdns"
	"github.com/colugo-go/colugo/examples/posepb"
	"github.com/colugo-go/colugo/internal/netns"
	"github.com/colugo-go/colugo/internal/testwait"
)

// Seed compatibility (colugo.WithSeedCompat) against the real seed, in a
// private network namespace (lo only): the four exchanges at full rate in
// both start orders with programs on the seed's own classes
// (testdata/seed/seedapp.py), a seed restart, a Go restart, and the seed's
// own example programs once each.

const seedCount = 1000

// seedCompatNode is a Go node in seed compatibility mode on lo: no colugo
// discovery (only seed sockets matter here), seed records with a short
// expiry so that a seed node killed without goodbye goes quickly.
func seedCompatNode(t *testing.T, name string) *colugo.Node {
	t.Helper()
	d := mdns.NewSeedDirectory(mdns.WithInterfaces("lo"), mdns.WithRefreshInterval(500*time.Millisecond), mdns.WithExpiry(5*time.Second))
	n, err := colugo.NewNode(name, colugo.WithDiscovery(discovery.Static()), colugo.WithSeedCompat(colugo.SeedConfig{Directory: d}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func raw() colugo.Option { return colugo.WithCodec(codec.Raw{}) }

// nextRaw returns the next message of ch, failing t after d.
func nextRaw(t *testing.T, ch <-chan []byte, d time.Duration) string {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return string(m)
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
	}
	return ""
}

func checkNoExceptions(t *testing.T, ps ...*seedProc) {
	t.Helper()
	for _, p := range ps {
		if ex := p.exceptions(); len(ex) > 0 {
			t.Errorf("%s: %q", p.name, ex)
		}
	}
}

func order(goFirst bool) string {
	if goFirst {
		return "go-first"
	}
	return "seed-first"
}

func TestSeedCompat(t *testing.T) {
	needSeed(t)
	netns.Run(t, func(t *testing.T) {
		netns.CheckInterfaces(t, "lo")
		t.Setenv(colugo.EnvDiscovery, "none") // no colugo discovery: the seed sockets only
		dir := prepareSeed(t)
		for i, goFirst := range []bool{true, false} {
			t.Run("seed-pub-to-go-sub/"+order(goFirst), func(t *testing.T) { seedPubToGo(t, dir, fmt.Sprintf("s2g%d", i), goFirst) })
			t.Run("go-pub-to-seed-sub/"+order(goFirst), func(t *testing.T) { goPubToSeed(t, dir, fmt.Sprintf("g2s%d", i), goFirst) })
			t.Run("seed-req-to-go-server/"+order(goFirst), func(t *testing.T) { seedReqToGo(t, dir, fmt.Sprintf("g.add%d", i), goFirst) })
			t.Run("go-req-to-seed-rep/"+order(goFirst), func(t *testing.T) { goReqToSeed(t, dir, fmt.Sprintf("s.echo%d", i), goFirst) })
		}
		t.Run("seed-protobuf-to-go", func(t *testing.T) { seedProtobufToGo(t, dir) })
		t.Run("seed-examples", func(t *testing.T) { seedExamples(t, dir) })
	})
}

// seedPubToGo: a Go subscriber gets all of a seed publisher's burst, in
// order; the seed publisher restarts (new uuid, new port) and the same
// subscription gets the new one's messages.
func seedPubToGo(t *testing.T, dir, topic string, goFirst bool) {
	var node *colugo.Node
	var msgs <-chan []byte
	var made time.Time
	var seedSub *seedProc // a seed subscriber made with the Go one: the seed's own discovery time
	subscribe := func() {
		seedSub = startSeedScript(t, nil, dir, "seedapp.py", "seed-sub", "sub", topic, strconv.Itoa(seedCount))
		made = time.Now()
		node = seedCompatNode(t, "go-sub")
		var err error
		if msgs, err = colugo.Subscribe[[]byte](t.Context(), node, topic, raw(), colugo.WithBuffer(4*seedCount)); err != nil {
			t.Fatal(err)
		}
	}
	if goFirst {
		subscribe()
	}
	pub := startSeedScript(t, nil, dir, "seedapp.py", "seed-pub", "pub", topic, strconv.Itoa(seedCount))
	pub.expect(t, "READY", wait)
	if !goFirst {
		subscribe()
	}
	first := nextRaw(t, msgs, 2*wait)
	goFirstAt := time.Since(made)
	seedFirst := seedSub.expect(t, "FIRST", 2*wait)
	t.Logf("first message %q %v after the Go node was made; a seed subscriber started with it: %s s after its Node was made",
		first, goFirstAt.Round(time.Millisecond), strings.TrimPrefix(seedFirst, "FIRST "))
	if _, err := pub.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for want := 0; want < seedCount; {
		switch m := nextRaw(t, msgs, wait); m {
		case "warm":
		case "m " + strconv.Itoa(want):
			want++
		default:
			t.Fatalf("got %q, want m %d", m, want)
		}
	}
	t.Logf("%d/%d messages from the seed publisher in %v", seedCount, seedCount, time.Since(start).Round(time.Millisecond))
	seedSub.expect(t, "GOT", wait) // the seed's own subscriber got them all too
	checkNoExceptions(t, pub, seedSub)

	// Restart: the goodbye disconnects, the new publisher (new uuid, new
	// port) is found and joins the same subscription.
	pub.stop(t)
	testwait.Until(t, "the seed publisher to leave", func() bool { return node.Stats().Seed.Sockets == 0 })
	restarted := time.Now()
	pub2 := startSeedScript(t, nil, dir, "seedapp.py", "seed-pub-2", "pub", topic, "1")
	pub2.expect(t, "READY", wait)
	for m := nextRaw(t, msgs, 2*wait); m != "warm"; m = nextRaw(t, msgs, 2*wait) {
	}
	t.Logf("restarted seed publisher: first message %v after its start", time.Since(restarted).Round(time.Millisecond))
	if st := node.Stats().Seed; st.Sockets != 1 || st.Connected != 1 {
		t.Errorf("after the restart Stats().Seed = %+v, want 1 socket, 1 connected", st)
	}
	checkNoExceptions(t, pub2)
}

// goPubToSeed: a seed subscriber gets all of a SeedVisible publisher's
// messages in order; the Go node restarts and the seed subscriber, still
// running, gets the new node's messages.
func goPubToSeed(t *testing.T, dir, topic string, goFirst bool) {
	var node *colugo.Node
	var pub *colugo.Publisher[[]byte]
	publisher := func() {
		node = seedCompatNode(t, "go-pub")
		var err error
		if pub, err = colugo.NewPublisher[[]byte](node, topic, raw(), colugo.SeedVisible()); err != nil {
			t.Fatal(err)
		}
	}
	if goFirst {
		publisher()
	}
	sub := startSeedScript(t, nil, dir, "seedapp.py", "seed-sub", "sub", topic, strconv.Itoa(seedCount))
	if !goFirst {
		// Seed first means subscribed first: the seed drops a publisher it
		// resolves while its Node is still being made (seedapp.py, Sub).
		sub.expect(t, "READY", wait)
		publisher()
	}
	// Warm until the seed subscriber has a first message: it has no other
	// way to say that it is connected.
	firstLine := make(chan string, 1)
	go func() {
		for l := range sub.lines {
			if strings.HasPrefix(l, "FIRST") {
				firstLine <- l
				return
			}
		}
		close(firstLine)
	}()
	var first string
	if !testwait.For(2*wait, func() bool {
		_ = pub.Publish(t.Context(), []byte("warm"))
		select {
		case first = <-firstLine:
			return true
		default:
			return false
		}
	}) {
		t.Fatalf("the seed subscriber got nothing; it printed %q", sub.output())
	}
	t.Logf("seed subscriber: %s s after its Node was made", strings.TrimPrefix(first, "FIRST "))
	start := time.Now()
	for i := range seedCount {
		if err := pub.Publish(t.Context(), []byte("m "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	sub.expect(t, "GOT", wait)
	t.Logf("%d/%d messages to the seed subscriber in %v (Stats().Seed %+v)", seedCount, seedCount, time.Since(start).Round(time.Millisecond), node.Stats().Seed)

	// Go restart: new records (fresh uuids, new port); the seed subscriber
	// connects to them.
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	publisher()
	again := make(chan struct{})
	go func() {
		for l := range sub.lines {
			if l == "AGAIN" {
				close(again)
				return
			}
		}
	}()
	if !testwait.For(3*wait, func() bool {
		_ = pub.Publish(t.Context(), []byte("again"))
		select {
		case <-again:
			return true
		default:
			return false
		}
	}) {
		t.Fatalf("the seed subscriber got nothing from the restarted Go node; it printed %q", sub.output())
	}
	t.Logf("restarted Go publisher: the seed subscriber got a message %v after the restart", time.Since(restarted).Round(time.Millisecond))
	checkNoExceptions(t, sub)
}

type addArgs struct {
	A, B int
}

// seedReqToGo: a seed request client gets every answer from a SeedVisible
// service, none times out.
func seedReqToGo(t *testing.T, dir, name string, goFirst bool) {
	serve := func() {
		node := seedCompatNode(t, "go-server")
		if _, err := colugo.Serve(node, name, func(_ context.Context, a addArgs) (int, error) { return a.A + a.B, nil }, colugo.SeedVisible()); err != nil {
			t.Fatal(err)
		}
	}
	if goFirst {
		serve()
	}
	req := startSeedScript(t, nil, dir, "seedapp.py", "seed-req", "req", name, strconv.Itoa(seedCount), `{"A": 2, "B": 3}`)
	if !goFirst {
		req.expect(t, "READY", wait) // as in goPubToSeed
		serve()
	}
	first := req.expect(t, "FIRST", 2*wait)
	if f := strings.Fields(first); len(f) != 3 || f[2] != "5" {
		t.Errorf("first reply line %q, want the sum 5", first)
	}
	done := req.expect(t, "REPLIES", 2*wait)
	if done != fmt.Sprintf("REPLIES %d TIMEOUTS 0", seedCount) {
		t.Errorf("%q, want %d replies and no timeout", done, seedCount)
	}
	t.Logf("seed request client: %s; %s", first, done)
	checkNoExceptions(t, req)
}

// goReqToSeed: Request reaches a seed reply server, every time.
func goReqToSeed(t *testing.T, dir, name string, goFirst bool) {
	var node *colugo.Node
	var early chan error
	if goFirst { // a request waiting for its server
		node = seedCompatNode(t, "go-client")
		early = make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
			defer cancel()
			out, err := colugo.Request[[]byte, []byte](ctx, node, name, []byte("early"), raw())
			if err == nil && string(out) != "seed-echo:early" {
				err = fmt.Errorf("reply %q", out)
			}
			early <- err
		}()
	}
	rep := startSeedScript(t, nil, dir, "seedapp.py", "seed-rep", "rep", name)
	rep.expect(t, "READY", wait)
	if goFirst {
		if err := <-early; err != nil {
			t.Fatalf("the request made before the seed server started: %v", err)
		}
	} else {
		node = seedCompatNode(t, "go-client")
		ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
		defer cancel()
		if err := node.WaitServers(ctx, name, 1); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for i := range seedCount {
		body := "r " + strconv.Itoa(i)
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		out, err := colugo.Request[[]byte, []byte](ctx, node, name, []byte(body), raw())
		cancel()
		if err != nil || string(out) != "seed-echo:"+body {
			t.Fatalf("request %d: %q, %v", i, out, err)
		}
	}
	t.Logf("%d/%d requests to the seed reply server in %v", seedCount, seedCount, time.Since(start).Round(time.Millisecond))
	checkNoExceptions(t, rep)
}

// seedProtobufToGo: a seed publisher's serialized protobuf (send(bytes),
// as pub_proto.py does; here AddRequest{A: 200, B: 3}, whose varint 200
// is not valid UTF-8, which the seed could not receive but can send)
// decodes in a typed protobuf subscription.
func seedProtobufToGo(t *testing.T, dir string) {
	node := seedCompatNode(t, "go-sub")
	msgs, err := colugo.Subscribe[*posepb.AddRequest](t.Context(), node, "seed.proto", colugo.WithCodec(protobuf.Codec{}))
	if err != nil {
		t.Fatal(err)
	}
	p := startSeedScript(t, nil, dir, "seedapp.py", "seed-pubbytes", "pubbytes", "seed.proto", "08c8011003")
	select {
	case m := <-msgs:
		if m.GetA() != 200 || m.GetB() != 3 {
			t.Errorf("got %v, want a:200 b:3", m)
		}
	case <-time.After(2 * wait):
		t.Fatalf("no protobuf message from the seed publisher; it printed %q", p.output())
	}
	checkNoExceptions(t, p)
}

// seedExample is the JSON the seed's pub_json.py sends.
type seedExample struct {
	Message string `json:"message"`
	ID      int    `json:"id"`
	Value   int    `json:"value"`
}

// seedExamples runs the seed's own example programs (1 Hz) once each
// against Go: pub.py, pub_json.py, pub_proto.py and rep.py serve Go;
// sub.py, sub_json.py, sub_proto.py and req.py are served by Go.
func seedExamples(t *testing.T, dir string) {
	example := func(name string) *seedProc {
		return startSeedScript(t, nil, dir, "runexample.py", name, dir+"/seed-colugo/examples/py/"+name)
	}
	t.Run("pub.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-sub")
		msgs, err := colugo.Subscribe[[]byte](t.Context(), node, "pub.topic", raw())
		if err != nil {
			t.Fatal(err)
		}
		p := example("pub.py")
		if m := nextRaw(t, msgs, 2*wait); m != "Message" {
			t.Errorf("got %q, want Message", m)
		}
		p.stop(t)
		checkNoExceptions(t, p)
	})
	t.Run("pub_json.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-sub")
		msgs, err := colugo.Subscribe[seedExample](t.Context(), node, "json.pub.topic")
		if err != nil {
			t.Fatal(err)
		}
		p := example("pub_json.py")
		select {
		case m := <-msgs:
			if m.Message != "This is a message" {
				t.Errorf("got %+v", m)
			}
		case <-time.After(2 * wait):
			t.Fatalf("nothing from pub_json.py; it printed %q", p.output())
		}
		p.stop(t)
		checkNoExceptions(t, p)
	})
	t.Run("sub.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-pub")
		pub, err := colugo.NewPublisher[[]byte](node, "pub.topic", raw(), colugo.SeedVisible())
		if err != nil {
			t.Fatal(err)
		}
		p := example("sub.py")
		publishUntil(t, p, "Received message: from Go", func() { _ = pub.Publish(t.Context(), []byte("from Go")) })
		checkNoExceptions(t, p)
	})
	t.Run("sub_json.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-pub")
		pub, err := colugo.NewPublisher[seedExample](node, "json.pub.topic", colugo.SeedVisible())
		if err != nil {
			t.Fatal(err)
		}
		p := example("sub_json.py")
		publishUntil(t, p, "Received message!", func() { _ = pub.Publish(t.Context(), seedExample{Message: "from Go", Value: 7}) })
		checkNoExceptions(t, p)
	})
	t.Run("rep.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-client")
		p := example("rep.py")
		ctx, cancel := context.WithTimeout(t.Context(), 2*wait)
		defer cancel()
		out, err := colugo.Request[[]byte, []byte](ctx, node, "rpc.topic", []byte("from Go"), raw())
		if err != nil || string(out) != "from Go" {
			t.Fatalf("rep.py answered %q, %v", out, err)
		}
		p.stop(t)
		checkNoExceptions(t, p)
	})
	t.Run("req.py", func(t *testing.T) {
		node := seedCompatNode(t, "go-server")
		if _, err := colugo.Serve(node, "rpc.topic", func(_ context.Context, b []byte) ([]byte, error) {
			return append([]byte("go:"), b...), nil
		}, raw(), colugo.SeedVisible()); err != nil {
			t.Fatal(err)
		}
		p := example("req.py")
		p.expect(t, "RequestClient Got reply: go:Message 0", 2*wait)
		p.stop(t)
		checkNoExceptions(t, p)
	})
	t.Run("proto", func(t *testing.T) { seedProtoExamples(t, dir, example) })
}

// publishUntil calls publish until p prints a line containing want.
func publishUntil(t *testing.T, p *seedProc, want string, publish func()) {
	t.Helper()
	if !testwait.For(2*wait, func() bool {
		publish()
		for _, l := range p.output() {
			if strings.Contains(l, want) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s never printed %q; it printed %q", p.name, want, p.output())
	}
}

// TestSeedCLI: the colugo command with --seed against real seed nodes, on
// two simulated hosts (the CLI's mDNS needs an interface other than lo):
// echo and topics see a seed publisher, call reaches a seed reply server,
// pub reaches a seed subscriber.
func TestSeedCLI(t *testing.T) {
	needSeed(t)
	netns.Run(t, func(t *testing.T) {
		hosts := seedHosts(t, 2)
		dir := prepareSeed(t)
		bin := filepath.Join(t.TempDir(), "colugo")
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/colugo-go/colugo/cmd/colugo").CombinedOutput(); err != nil {
			t.Fatalf("go build cmd/colugo: %v\n%s", err, out)
		}
		checkHostInterfaces(t, hosts[1])
		cli := func(t *testing.T, args ...string) (string, string, error) {
			t.Helper()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", hosts[1].Name, bin}, args...)...)
			// Inside the namespace only: its hosts' veths reach nothing else.
			cmd.Env = append(os.Environ(), colugo.EnvDiscovery+"=mdns")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			t.Logf("colugo %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
			return stdout.String(), stderr.String(), err
		}

		pub := startSeedScript(t, hosts[0], dir, "seedapp.py", "seed-pub", "pub", "cli.topic", "1")
		pub.expect(t, "READY", wait)
		rep := startSeedScript(t, hosts[0], dir, "seedapp.py", "seed-rep", "rep", "cli.echo")
		rep.expect(t, "READY", wait)

		t.Run("echo", func(t *testing.T) {
			out, _, err := cli(t, "echo", "cli.topic", "--seed", "--count", "3", "--timeout", "20s")
			if err != nil || out != "warm\nwarm\nwarm\n" {
				t.Errorf("echo: %q, %v; want three warm lines", out, err)
			}
		})
		t.Run("echo-pattern", func(t *testing.T) {
			out, _, err := cli(t, "echo", "*", "--seed", "--count", "2", "--timeout", "20s")
			if err != nil || out != "cli.topic: warm\ncli.topic: warm\n" {
				t.Errorf("echo '*': %q, %v; want two cli.topic: warm lines", out, err)
			}
		})
		t.Run("topics", func(t *testing.T) {
			out, _, err := cli(t, "topics", "--seed", "--wait", "3s")
			if err != nil || !regexp.MustCompile(`(?m)^cli\.topic\s.*\bseed\b`).MatchString(out) {
				t.Errorf("topics: %q, %v; want cli.topic published by seed", out, err)
			}
		})
		t.Run("services", func(t *testing.T) {
			out, _, err := cli(t, "services", "--seed", "--wait", "3s")
			if err != nil || !regexp.MustCompile(`(?m)^cli\.echo\s.*\bseed\b`).MatchString(out) {
				t.Errorf("services: %q, %v; want cli.echo served by seed", out, err)
			}
		})
		t.Run("call", func(t *testing.T) {
			out, _, err := cli(t, "call", "cli.echo", `"hi"`, "--seed", "--timeout", "20s")
			if err != nil || out != "seed-echo:hi\n" {
				t.Errorf("call: %q, %v; want seed-echo:hi", out, err)
			}
		})
		t.Run("pub", func(t *testing.T) {
			sub := startSeedScript(t, hosts[0], dir, "seedapp.py", "seed-sub", "sub", "cli.in", "1")
			sub.expect(t, "READY", wait)
			_, _, err := cli(t, "pub", "cli.in", `"m 0"`, "--seed", "--count", "40", "--rate", "10")
			if err != nil {
				t.Fatal(err)
			}
			sub.expect(t, "GOT 1", wait)
		})
		checkNoExceptions(t, pub, rep)
	})
}
