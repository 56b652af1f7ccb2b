package jstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
)

// subprotocols are the ones conformance.mjs offers, one per connection.
var subprotocols = []string{"foxglove.sdk.v1", "foxglove.websocket.v1"}

// TestFoxgloveClientConformance runs the Foxglove WebSocket protocol's
// reference client (FoxgloveClient of @foxglove/ws-protocol) against
// `colugo web`, with publishing allowed and denied, over both
// subprotocols: conformance.mjs checks serverInfo, the channels and their
// schemas (it decodes every message with them), service calls,
// publishing and unsubscribing; this test checks what needs the colugo
// side: that messageData timestamps are the publishers' send times, as a
// colugo subscriber sees them, and that what the client publishes
// reaches a colugo subscriber when allowed and only then.
func TestFoxgloveClientConformance(t *testing.T) {
	needJS(t, false)
	deadline := time.Now().Add(55 * time.Second) // the whole test's bound
	n := newNetwork(t)
	n.start("publisher")
	n.start("protobuf", "pub")
	n.start("server")
	// The publishers' send times, by their keys: the pose's seq, the
	// protobuf pose's x (both count up).
	sendTimes := map[string]*proc{
		"robot/pose":    n.start("colugo", "echo", "robot/pose", "--json", "--timeout", "20s"),
		"robot/pose.pb": n.start("colugo", "echo", "robot/pose.pb", "--json", "--timeout", "20s"),
	}
	keyOf := map[string]string{"robot/pose": "seq", "robot/pose.pb": "x"}

	for _, tc := range []struct {
		name  string
		allow bool
	}{{"allow-publish", true}, {"no-publish", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := &network{t: t, dir: n.dir} // the same network, this subtest's processes
			topic := "conf/client/" + tc.name
			// --codec: subscribe at once, not after a publisher appears.
			received := sub.start("colugo", "echo", topic, "--codec", "json", "--json")
			var args []string
			mode := "denied"
			if tc.allow {
				args, mode = []string{"--allow-publish"}, "allowed"
			}
			addr, _ := sub.web(args...)
			if !tc.allow {
				// A control: the subscriber receives what a colugo
				// publisher sends, so its silence below means something.
				ctl := sub.start("colugo", "pub", topic, `{"control":true}`, "--codec", "json", "--rate", "20", "--wait", "1s")
				if !testwait.For(10*time.Second, func() bool { return len(echoed(received)) > 0 }) {
					t.Fatalf("the subscriber of %s printed nothing of colugo pub's messages within 10 s", topic)
				}
				ctl.stop()
			}
			ackDir := t.TempDir()
			stopAck := acknowledge(received, ackDir)
			out := sub.node(time.Until(deadline), "conformance.mjs", "ws://"+addr, "--publish", mode, "--topic", topic, "--ack-dir", ackDir)
			stopAck()

			var sum summary
			if err := json.Unmarshal([]byte(out), &sum); err != nil {
				t.Fatalf("conformance.mjs printed no JSON summary: %v", err)
			}
			if !sum.OK || len(sum.Failures) > 0 || len(sum.Sessions) != len(subprotocols) {
				t.Fatalf("conformance.mjs: ok %v, %d sessions, failures %q", sum.OK, len(sum.Sessions), sum.Failures)
			}
			for i, s := range sum.Sessions {
				if s.Subprotocol != subprotocols[i] || s.Protocol != s.Subprotocol {
					t.Errorf("session %d offered %q, server chose %q", i, s.Subprotocol, s.Protocol)
				}
				if got := slices.Contains(s.ServerInfo.Capabilities, "clientPublish"); got != tc.allow {
					t.Errorf("%s: capabilities %q with publishing %s", s.Subprotocol, s.ServerInfo.Capabilities, mode)
				}
				if s.Sum != 42 || s.AfterUnsubscribe["robot/pose"] != 0 {
					t.Errorf("%s: sum %d, messages after unsubscribing %d", s.Subprotocol, s.Sum, s.AfterUnsubscribe["robot/pose"])
				}
				if s.Publish.Acked != tc.allow {
					t.Errorf("%s: publishing %s, but the subscriber acknowledged: %v", s.Subprotocol, mode, s.Publish.Acked)
				}
				for topic, msgs := range s.Messages {
					checkSendTimes(t, s.Subprotocol, topic, msgs, sendTimes[topic], keyOf[topic])
				}
			}
			from := map[string]int{}
			for _, m := range echoed(received) {
				var v struct{ From string }
				_ = json.Unmarshal(m.Value, &v)
				from[v.From]++
			}
			for _, p := range subprotocols {
				if tc.allow && from[p] == 0 {
					t.Errorf("the colugo subscriber of %s printed nothing that the %s client published", topic, p)
				}
				if !tc.allow && from[p] > 0 {
					t.Errorf("publishing denied, but the colugo subscriber of %s printed %d messages of the %s client", topic, from[p], p)
				}
			}
		})
	}
}

// summary is conformance.mjs's output.
type summary struct {
	OK       bool
	Failures []string
	Sessions []struct {
		Subprotocol string
		Protocol    string
		ServerInfo  struct{ Capabilities []string }
		Messages    map[string][]struct {
			Key float64
			TS  string
		}
		Sum     int
		Publish struct {
			Sent  int
			Acked bool
			AckMs int
		}
		AfterUnsubscribe map[string]int
	}
}

// checkSendTimes checks that each message's timestamp, as the client got
// it, is the publisher's send time of the same message as the colugo
// subscriber printed it, to the nanosecond: the send time, not the
// gateway's receive time. Messages before the subscriber's first one are
// not compared; at least 3 must be.
func checkSendTimes(t *testing.T, sp, topic string, msgs []struct {
	Key float64
	TS  string
}, echo *proc, key string,
) {
	t.Helper()
	sent := func() (map[float64]int64, float64) {
		m, first := map[float64]int64{}, -1.0
		for _, e := range echoed(echo) {
			var v map[string]any
			if json.Unmarshal(e.Value, &v) != nil {
				continue
			}
			k, ok := v[key].(float64)
			if !ok {
				continue
			}
			if first < 0 {
				first = k
			}
			m[k] = e.SendTime.UnixNano()
		}
		return m, first
	}
	// The subscriber may still be printing the last ones.
	var times map[float64]int64
	var first float64
	testwait.For(5*time.Second, func() bool {
		times, first = sent()
		return first >= 0 && (len(msgs) == 0 || times[msgs[len(msgs)-1].Key] != 0)
	})
	matched := 0
	for _, m := range msgs {
		if first < 0 || m.Key < first {
			continue
		}
		want, ok := times[m.Key]
		got, err := strconv.ParseInt(m.TS, 10, 64)
		switch {
		case err != nil:
			t.Errorf("%s %s %s=%v: timestamp %q: %v", sp, topic, key, m.Key, m.TS, err)
		case !ok:
			t.Errorf("%s %s %s=%v: the colugo subscriber did not print this message", sp, topic, key, m.Key)
		case got != want:
			t.Errorf("%s %s %s=%v: timestamp %d, the publisher's send time is %d (%v apart)", sp, topic, key, m.Key, got, want, time.Duration(got-want))
		default:
			matched++
		}
	}
	t.Logf("%s %s: %d timestamps equal to the publisher's send times", sp, topic, matched)
	if matched < 3 {
		t.Errorf("%s %s: %d of %d messages compared with the colugo subscriber's, want at least 3", sp, topic, matched, len(msgs))
	}
}

// echoLine is one line of `colugo echo --json`.
type echoLine struct {
	SendTime time.Time       `json:"send_time"`
	Value    json.RawMessage `json:"value"`
}

// echoed parses what a `colugo echo --json` process printed so far,
// skipping its log lines.
func echoed(p *proc) []echoLine {
	var out []echoLine
	for _, l := range strings.Split(p.Output(), "\n") {
		var e echoLine
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &e) == nil && e.Value != nil {
			out = append(out, e)
		}
	}
	return out
}

// acknowledge makes the file dir/SUBPROTOCOL, which conformance.mjs waits
// for, once echo has printed a message that the client of that
// subprotocol published, until the returned stop is called.
func acknowledge(echo *proc, dir string) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(20 * time.Millisecond) // echo's output has no event to wait on
		defer tick.Stop()
		made := map[string]bool{}
		for {
			for _, e := range echoed(echo) {
				var v struct{ From string }
				if json.Unmarshal(e.Value, &v) == nil && slices.Contains(subprotocols, v.From) && !made[v.From] {
					made[v.From] = os.WriteFile(filepath.Join(dir, v.From), nil, 0o600) == nil
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-exited }
}
