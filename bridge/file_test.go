package bridge_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/colugo-go/colugo/bridge"
	"github.com/colugo-go/colugo/colugotest"
)

func TestParseConfig(t *testing.T) {
	c, err := bridge.ParseConfig([]byte(`
site: lab
nats:
  urls: [nats://127.0.0.1:4222]
  token: s3cret
  reconnect_wait: 250ms
  tls: {ca: ca.pem}
prefix: lab
queue_budget: 16777216
max_export_topics: 64
export:
  topics:
    - {name: "robot/*/pose", max_rate: 10, max_payload: 4096}
    - {name: robot/log, jetstream: {max_msgs: 100000, max_bytes: 67108864, max_age: 24h, spool: 1048576, replicas: 3}}
  services:
    - {name: robot/status}
import:
  topics:
    - {name: "cmd/**", prefix: control}
    - {name: cmd/mission, prefix: control, jetstream: {}}
  services:
    - {name: plan, prefix: cloud, max_payload: 1024}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := bridge.Config{
		Site:   "lab",
		NATS:   bridge.NATS{URLs: []string{"nats://127.0.0.1:4222"}, Token: "s3cret", ReconnectWait: 250 * time.Millisecond, TLS: bridge.TLS{CA: "ca.pem"}},
		Prefix: "lab", QueueBudget: 16 << 20, MaxExportTopics: 64,
		Export: bridge.Lists{Topics: []bridge.Topic{{Name: "robot/*/pose", MaxRate: 10, MaxPayload: 4096},
			{Name: "robot/log", JetStream: &bridge.JetStream{MaxMsgs: 100000, MaxBytes: 64 << 20, MaxAge: 24 * time.Hour, Spool: 1 << 20, Replicas: 3}}},
			Services: []bridge.Service{{Name: "robot/status"}}},
		Import: bridge.Lists{Topics: []bridge.Topic{{Name: "cmd/**", Prefix: "control"}, {Name: "cmd/mission", Prefix: "control", JetStream: &bridge.JetStream{}}},
			Services: []bridge.Service{{Name: "plan", Prefix: "cloud", MaxPayload: 1024}}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	for name, doc := range map[string]string{
		"unknown key":   "site: a\nexprot: {}\n",
		"wrong type":    "site: a\nmax_inflight: many\n",
		"two documents": "site: a\n---\nsite: b\n",
		"empty":         "",
		"bad duration":  "nats: {reconnect_wait: soon}\n",
	} {
		if _, err := bridge.ParseConfig([]byte(doc)); !errors.Is(err, bridge.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestFilesNotRegular: a config, credential, key or certificate path that
// is a FIFO, a device, a directory or a file over 1 MiB is refused at
// once (a FIFO used to hang the read, /dev/zero to fill memory), and a
// missing credential file too.
func TestFilesNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skip("no FIFO here:", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<20+1); err != nil {
		t.Fatal(err)
	}
	paths := []string{fifo, "/dev/zero", dir, big}
	for _, p := range paths {
		done := make(chan error, 1)
		go func() { _, err := bridge.LoadConfig(p); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, bridge.ErrConfig) {
				t.Errorf("LoadConfig(%s): %v, want ErrConfig", p, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("LoadConfig(%s) hangs", p)
		}
	}
	node := colugotest.NewNode(t, "bridge")
	for _, p := range append(paths, filepath.Join(dir, "missing")) {
		for name, set := range map[string]func(*bridge.Config){
			"creds_file": func(c *bridge.Config) { c.NATS.CredsFile = p },
			"nkey_file":  func(c *bridge.Config) { c.NATS.NKeyFile = p },
			"tls ca":     func(c *bridge.Config) { c.NATS.TLS.CA = p },
			"tls cert":   func(c *bridge.Config) { c.NATS.TLS.Cert, c.NATS.TLS.Key = p, p },
		} {
			c := bridge.Config{Site: "a", NATS: bridge.NATS{URLs: []string{"nats://127.0.0.1:1"}}}
			set(&c)
			done := make(chan error, 1)
			go func() {
				b, err := bridge.New(node, c)
				if b != nil {
					_ = b.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, bridge.ErrConfig) {
					t.Errorf("%s %s: %v, want ErrConfig", name, p, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s %s: New hangs", name, p)
			}
		}
	}
}
