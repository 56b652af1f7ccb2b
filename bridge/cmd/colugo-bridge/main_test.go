package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
)

func TestMain(m *testing.M) {
	if os.Getenv(colugo.EnvDiscovery) == "" {
		os.Setenv(colugo.EnvDiscovery, "local") // the bridge node never sends mDNS here
	}
	goleak.VerifyTestMain(m)
}

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

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("site: lab\nnats:\n  urls: [nats://127.0.0.1:1]\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: colugo-bridge --config FILE"},
		{[]string{"--help"}, 0, "example: colugo-bridge"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, 2, "missing.yaml"},
		{[]string{"--config", bad}, 2, "field bogus not found"},
		{[]string{"--config", bad, "extra"}, 2, "usage:"},
	} {
		var out syncBuffer
		if code := run(context.Background(), tc.args, &out); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("colugo-bridge %q: exit %d, want %d; stderr %q, want %q in it", tc.args, code, tc.code, out.String(), tc.want)
		}
	}
}

// The command bridges what its file lists: a topic published on the site
// reaches NATS, and an interrupt stops it with its counts printed.
func TestRun(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{NoAdvertise: true}, LeafNode: server.LeafNodeOpts{NoAdvertise: true}})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()

	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime) // the bridge node's registry, and the site's
	cfg := filepath.Join(t.TempDir(), "lab.yaml")
	file := "site: lab\nnats:\n  urls: [" + ns.ClientURL() + "]\nexport:\n  topics:\n    - name: robot/pose\n"
	if err := os.WriteFile(cfg, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got, err := nc.SubscribeSync("colugo.t.robot.pose")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"--config", cfg, "--stats", "0"}, &out) }()

	robot, err := colugo.NewNode("robot", colugo.WithDiscovery(local.New(local.WithDir(filepath.Join(runtime, "colugo")))))
	if err != nil {
		t.Fatal(err)
	}
	defer robot.Close()
	pub, err := colugo.NewPublisher[string](robot, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := pub.Publish(ctx, "x=1"); err != nil {
			t.Fatal(err)
		}
		m, err := got.NextMsg(50 * time.Millisecond)
		if err == nil {
			if string(m.Data) != `"x=1"` || m.Header.Get("Colugo-Origin") != "lab" {
				t.Errorf("NATS got %q, headers %v", m.Data, m.Header)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached NATS in 10 s; stderr:\n%s", out.String())
		}
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d after an interrupt, want 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("colugo-bridge did not stop within 10 s of its interrupt")
	}
	if s := out.String(); !strings.Contains(s, "site lab") || !strings.Contains(s, "link ") || !strings.Contains(s, "export ") {
		t.Errorf("stderr %q lacks the start line or the final counts", s)
	}
}
