package bridge_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/colugo-go/colugo/bridge"
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
    - {name: robot/log, jetstream: {max_msgs: 100000, max_bytes: 67108864, max_age: 24h, spool: 1048576}}
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
			{Name: "robot/log", JetStream: &bridge.JetStream{MaxMsgs: 100000, MaxBytes: 64 << 20, MaxAge: 24 * time.Hour, Spool: 1 << 20}}},
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
