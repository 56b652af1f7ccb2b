package discovery_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// drain reads ch until it is closed and returns what it got; the channel
// must already be closed or about to be.
func drain(t *testing.T, ch <-chan discovery.Event) []discovery.Event {
	t.Helper()
	var got []discovery.Event
	for ev := range ch {
		got = append(got, ev)
	}
	return got
}

func TestStatic(t *testing.T) {
	t.Parallel()
	d := discovery.Static("10.0.0.1:7000", "[::1]:7001", "robot.local:7002", "10.0.0.1:7000")
	ch, err := d.Start(discovery.Peer{ID: "self", Router: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(discovery.Peer{ID: "self"}); !errors.Is(err, discovery.ErrStarted) {
		t.Errorf("second Start = %v, want %v", err, discovery.ErrStarted)
	}
	if err := d.Update(discovery.Peer{ID: "self", Catalog: "x"}); err != nil {
		t.Errorf("Update = %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := d.Update(discovery.Peer{ID: "self"}); !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("Update after Close = %v, want %v", err, discovery.ErrClosed)
	}
	got := drain(t, ch)
	want := []string{"10.0.0.1:7000", "[::1]:7001", "robot.local:7002"}
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d", len(got), got, len(want))
	}
	for i, ev := range got {
		wantEv := discovery.Event{Kind: discovery.Joined, Peer: discovery.Peer{Router: want[i]}}
		if ev != wantEv {
			t.Errorf("event %d = %+v, want %+v", i, ev, wantEv)
		}
	}
}

func TestStaticInvalid(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"", "10.0.0.1", "10.0.0.1:", ":7000", "10.0.0.1:http", "10.0.0.1:70000", "10.0.0.1:0", "::1:7000", "10.0.0.1:-1"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			d := discovery.Static("127.0.0.1:7000", addr)
			ch, err := d.Start(discovery.Peer{ID: "self"})
			if !errors.Is(err, discovery.ErrInvalidAddress) {
				t.Errorf("Start = %v, %v; want an error wrapping %v", ch, err, discovery.ErrInvalidAddress)
			}
			if err := d.Close(); err != nil {
				t.Errorf("Close after failed Start = %v", err)
			}
		})
	}
}

func TestStaticEmpty(t *testing.T) {
	t.Parallel()
	d := discovery.Static()
	ch, err := d.Start(discovery.Peer{ID: "self"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, ch); len(got) != 0 {
		t.Errorf("got %v, want no events", got)
	}
	if _, err := d.Start(discovery.Peer{}); !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("Start after Close = %v, want %v", err, discovery.ErrClosed)
	}
}
