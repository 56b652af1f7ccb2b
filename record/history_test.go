package record_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery/local"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/record"
	"github.com/foxglove/mcap/go/mcap"
)

// localNode starts a node on host-local discovery in dir (real sockets on
// loopback), closed at the end of the test.
func localNode(t *testing.T, dir, name string) *colugo.Node {
	t.Helper()
	n, err := colugo.NewNode(name, colugo.WithDiscovery(local.New(local.WithDir(dir))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// TestWriterHistoryChannels: a message's History becomes its channel's
// colugo.history metadata (none when 0), a different History starts a new
// channel of the topic, and Scan reads it back (clamped, and ignored when
// it is not a positive decimal number).
func TestWriterHistoryChannels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i, h := range []int{0, 3, 3, 5, 1 << 30} {
		if err := w.Write(record.Message{Topic: "t", Codec: "raw", LogTime: t0.Add(time.Duration(i) * time.Millisecond),
			Data: []byte{byte(i)}, History: h}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := mcap.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	info, err := rd.Info()
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]bool{}
	for _, c := range info.Channels {
		h, ok := c.Metadata[record.MetaHistory]
		marks[h] = ok
	}
	if len(info.Channels) != 4 || marks[""] || !marks["3"] || !marks["5"] || !marks["1073741824"] {
		t.Fatalf("%d channels, colugo.history values %v", len(info.Channels), marks)
	}
	sum, err := record.Scan(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, c := range sum.Channels {
		got = append(got, c.History)
	}
	if want := []int{0, 3, 5, colugo.MaxHistory}; !equal(got, want) {
		t.Fatalf("Scan histories %v, want %v", got, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRecorderHistory: the Recorder marks the topic whose publisher keeps
// history (colugo.history = its depth on the channel, "history" in the
// recording metadata), not the other, and asks for that history: the
// recording holds what was published before it started.
func TestRecorderHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, recNode := localNode(t, dir, "src"), localNode(t, dir, "recorder")
	desc, err := colugo.NewPublisher[pose](src, "robot/description", colugo.WithHistory(3))
	if err != nil {
		t.Fatal(err)
	}
	poses, err := colugo.NewPublisher[pose](src, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // before the recorder exists
		if err := desc.Publish(t.Context(), pose{X: i}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r, err := record.NewRecorder(recNode, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	testwait.Until(t, "the kept descriptions and a pose recorded", func() bool {
		_ = poses.Publish(ctx, pose{X: -1})
		var d, p uint64
		for _, tp := range r.Progress() {
			switch tp.Topic {
			case "robot/description":
				d = tp.Messages
			case "robot/pose":
				p = tp.Messages
			}
		}
		return d == 2 && p > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := record.Scan(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sum.Channels {
		want := 0
		if c.Topic == "robot/description" {
			want = 3
		}
		if c.History != want {
			t.Errorf("channel %s: history %d, want %d", c.Topic, c.History, want)
		}
	}
	meta := readMetadata(t, buf.Bytes())
	if meta["topic.robot/description.history"] != "3" || meta["topic.robot/pose.history"] != "0" {
		t.Errorf("recording metadata history: %q, %q", meta["topic.robot/description.history"], meta["topic.robot/pose.history"])
	}
}

// TestPlayHistory: Play publishes a topic recorded with history with
// colugo.WithHistory, so a subscriber on another node that joins after the
// value was played, asking for the last value, gets it (Replayed); the
// topic recorded without history offers none.
func TestPlayHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var buf bytes.Buffer
	w, err := record.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for _, m := range []record.Message{
		{Topic: "robot/description", Codec: "json", Type: "record_test.pose", LogTime: t0, Data: []byte(`{"X":42,"Y":1}`), History: 1},
		{Topic: "robot/pose", Codec: "json", Type: "record_test.pose", LogTime: t0, Data: []byte(`{"X":7,"Y":0}`)},
		{Topic: "robot/tick", Codec: "raw", LogTime: t0.Add(time.Millisecond), Data: []byte("end")},
	} {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	player, viewer := localNode(t, dir, "player"), localNode(t, dir, "viewer")
	var late colugo.Received[pose]
	var lateErr string
	var advertised []colugo.TopicInfo
	_, err = record.Play(t.Context(), player, bytes.NewReader(buf.Bytes()), record.Rate(0),
		record.OnProgress(func(p record.PlayProgress) {
			if p.LastTopic != "robot/tick" {
				return
			}
			// Everything has been played; Play (and its publishers) wait
			// here while a subscriber joins late.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			ch, err := colugo.SubscribeReceived[pose](ctx, viewer, "robot/description", colugo.WithLastValue())
			if err != nil {
				lateErr = err.Error()
				return
			}
			select {
			case late = <-ch:
			case <-ctx.Done():
				lateErr = "no last value within 10s"
			}
			// The viewer may have described the player while Play was still
			// creating its publishers: wait for the complete view.
			testwait.For(10*time.Second, func() bool {
				for _, peer := range viewer.Peers() {
					if peer.Name == "player" {
						advertised = peer.Topics
					}
				}
				return len(advertised) == 3
			})
		}))
	if err != nil {
		t.Fatal(err)
	}
	if lateErr != "" || late.Value.X != 42 || !late.Replayed {
		t.Fatalf("late subscriber: %+v %s", late, lateErr)
	}
	for _, tp := range advertised {
		want := 0
		if tp.Name == "robot/description" {
			want = 1
		}
		if tp.History != want {
			t.Errorf("player advertises %s with history %d, want %d", tp.Name, tp.History, want)
		}
	}
	if len(advertised) != 3 {
		t.Errorf("player advertises %d topics, want 3", len(advertised))
	}
}
