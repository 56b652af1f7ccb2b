package zmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/transporttest"
)

func pubMsg(topic string, seq uint64, payload []byte) *transport.Message {
	return &transport.Message{Name: topic, Header: transport.Header{
		Kind: transport.KindPublish, Codec: "raw", Sender: "pub", Seq: seq,
	}, Payload: payload}
}

// subscribeLive subscribes sub to topic at pub and publishes warm-up
// messages (Seq 0) until one arrives: subscriptions are asynchronous.
func subscribeLive(t *testing.T, pub, sub *node, rec *transporttest.Recorder, topic string) {
	t.Helper()
	if err := sub.Subscribe(pub.ep.Pub, topic, transport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "", func() bool {
		_ = publishNow(pub, pubMsg(topic, 0, nil))
		select {
		case m := <-rec.Publishes:
			if m.Header.Seq != 0 {
				t.Fatalf("warm-up for %q got %q seq %d", topic, m.Name, m.Header.Seq)
			}
			return m.Name == topic // else a late warm-up of an earlier topic
		case <-time.After(2 * time.Millisecond):
			return false
		}
	})
}

// drainWarmup drops Seq 0 messages and returns the next other one.
func nextReal(t *testing.T, ch <-chan *transport.Message) *transport.Message {
	t.Helper()
	for {
		if m := recv(t, ch); m.Header.Seq != 0 {
			return m
		}
	}
}

func TestNewInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Option{
		WithSendQueue(0), WithMaxFrameSize(10), WithHandshakeTimeout(0),
		WithHeartbeatInterval(0), WithPeerTimeout(time.Millisecond), WithLogger(nil),
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("New(%v): err = %v, want ErrInvalidOption", o, err)
		}
	}
}

// TestPubSubPrefixFiltering: several subscribers, "a" never matches "ab",
// and "" (all topics) matches everything.
func TestPubSubPrefixFiltering(t *testing.T) {
	t.Parallel()
	pub, _ := listen(t, &nopHandler{})
	type subT struct {
		n      *node
		rec    *transporttest.Recorder
		topics []string
	}
	var subs []subT
	for _, topics := range [][]string{{"a"}, {"ab"}, {"a", "b"}} {
		rec := transporttest.NewRecorder()
		n, _ := listen(t, rec)
		for _, tp := range topics {
			subscribeLive(t, pub, n, rec, tp)
		}
		subs = append(subs, subT{n, rec, topics})
	}
	for i, name := range []string{"ab", "a", "abc", "b", "a"} {
		if err := publishNow(pub, pubMsg(name, uint64(i+1), []byte(name))); err != nil {
			t.Fatal(err)
		}
	}
	if err := publishNow(pub, pubMsg("end", 99, nil)); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		want := map[string]bool{}
		for _, tp := range s.topics {
			want[tp] = true
		}
		for _, tp := range []string{"ab", "a", "abc", "b", "a"} {
			if want[tp] {
				m := nextReal(t, s.rec.Publishes)
				if m.Name != tp || string(m.Payload) != tp {
					t.Fatalf("subscriber of %v: got %q (%q), want %q", s.topics, m.Name, m.Payload, tp)
				}
			}
		}
		select {
		case m := <-s.rec.Publishes:
			if m.Header.Seq != 0 {
				t.Fatalf("subscriber of %v got extra %q", s.topics, m.Name)
			}
		default:
		}
	}
}

// TestResubscribeAfterDrop: the publisher cuts the connection; the
// subscriber reports the loss, redials the same address, subscribes again
// and receives.
func TestResubscribeAfterDrop(t *testing.T) {
	t.Parallel()
	pub, _ := listen(t, &nopHandler{})
	rec := transporttest.NewRecorder()
	sub, _ := listen(t, rec, WithHeartbeatInterval(20*time.Millisecond), WithPeerTimeout(200*time.Millisecond))
	subscribeLive(t, pub, sub, rec, "t")
	subscribeLive(t, pub, sub, rec, "u")
	pub.mu.Lock()
	for c := range pub.conns {
		c.close(errors.New("test: drop"), false)
	}
	pub.mu.Unlock()
	select {
	case ev := <-rec.PeerLost:
		if ev.Addr != pub.ep.Pub || !errors.Is(ev.Err, transport.ErrPeerLost) {
			t.Fatalf("lost %q %v", ev.Addr, ev.Err)
		}
	case <-time.After(testWait):
		t.Fatal("no HandlePeerLost")
	}
	for _, topic := range []string{"t", "u"} {
		testwait.Until(t, "", func() bool {
			_ = publishNow(pub, pubMsg(topic, 1, nil))
			select {
			case m := <-rec.Publishes:
				return m.Name == topic && m.Header.Seq == 1
			case <-time.After(2 * time.Millisecond):
				return false
			}
		})
	}
	if got := sub.Stats().PeersLost; got != 1 {
		t.Fatalf("PeersLost = %d, want 1", got)
	}
}

// TestRequestManyConcurrent: many requests in flight, answered out of
// order from other goroutines.
func TestRequestManyConcurrent(t *testing.T) {
	t.Parallel()
	srvRec := transporttest.NewRecorder()
	var wg sync.WaitGroup
	srvRec.SetOnRequest(func(m *transport.Message, rw transport.ReplyWriter) {
		if m.Header.Kind == transport.KindCancel {
			return
		}
		wg.Go(func() {
			r := &transport.Message{Name: m.Name, Header: transport.Header{Kind: transport.KindReply, RequestID: m.Header.RequestID}, Payload: m.Payload}
			if err := rw.Reply(r); err != nil {
				t.Error(err)
			}
		})
	})
	t.Cleanup(wg.Wait)
	srv, _ := listen(t, srvRec)
	cli, _ := listen(t, &nopHandler{})
	const n = 500
	errs := make(chan error, n)
	for i := range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			p := fmt.Sprint("req-", i)
			m, err := cli.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc", Payload: []byte(p)})
			if err == nil && (string(m.Payload) != p || m.Header.Kind != transport.KindReply) {
				err = fmt.Errorf("request %q: reply %q kind %v", p, m.Payload, m.Header.Kind)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequestAfterReplierRestart: a request after the router's transport
// went away fails fast with ErrPeerLost, and the next one redials.
func TestRequestRedialAfterLoss(t *testing.T) {
	t.Parallel()
	srvRec := transporttest.NewRecorder()
	srvRec.SetOnRequest(echo)
	srv, _ := listen(t, srvRec)
	cliRec := transporttest.NewRecorder()
	cli, _ := listen(t, cliRec)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if _, err := cli.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc"}); err != nil {
		t.Fatal(err)
	}
	// Cut the connection from the server side.
	srv.mu.Lock()
	for c := range srv.conns {
		c.close(errors.New("test: drop"), false)
	}
	srv.mu.Unlock()
	select {
	case ev := <-cliRec.PeerLost:
		if ev.Addr != srv.ep.Router {
			t.Fatalf("lost %q", ev.Addr)
		}
	case <-time.After(testWait):
		t.Fatal("no HandlePeerLost for the router")
	}
	if _, err := cli.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc"}); err != nil {
		t.Fatalf("request after redial: %v", err)
	}
}

func echo(m *transport.Message, rw transport.ReplyWriter) {
	if m.Header.Kind == transport.KindCancel {
		return
	}
	_ = rw.Reply(&transport.Message{Name: m.Name, Header: transport.Header{
		Kind: transport.KindReply, RequestID: m.Header.RequestID,
	}, Payload: m.Payload})
}

// TestReplyErrors: Reply reports a gone requester and a closed transport.
func TestReplyErrors(t *testing.T) {
	t.Parallel()
	srvRec := transporttest.NewRecorder()
	rws := make(chan transport.ReplyWriter, 1)
	srvRec.SetOnRequest(func(m *transport.Message, rw transport.ReplyWriter) { rws <- rw })
	srv, _ := listen(t, srvRec)
	cli, _ := listen(t, &nopHandler{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = cli.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc"}) }()
	rw := <-rws
	cancel()
	_ = cli.Close()
	reply := &transport.Message{Name: "svc", Header: transport.Header{Kind: transport.KindReply}}
	testwait.Until(t, "", func() bool { return errors.Is(rw.Reply(reply), transport.ErrPeerLost) })
	_ = srv.Close()
	if err := rw.Reply(reply); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Reply after Close: %v", err)
	}
}

// TestHeartbeatKeepsIdleLinks: with short heartbeats, idle connections in
// both directions outlive several peer timeouts.
func TestHeartbeatKeepsIdleLinks(t *testing.T) {
	t.Parallel()
	// A timeout of 10 intervals: a loaded CI machine delayed a 20 ms
	// heartbeat past a 100 ms timeout once.
	opts := []Option{WithHeartbeatInterval(100 * time.Millisecond), WithPeerTimeout(time.Second)}
	srvRec := transporttest.NewRecorder()
	srvRec.SetOnRequest(echo)
	srv, _ := listen(t, srvRec, opts...)
	cliRec := transporttest.NewRecorder()
	cli, _ := listen(t, cliRec, opts...)
	subscribeLive(t, srv, cli, cliRec, "t")
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if _, err := cli.Request(ctx, srv.ep.Router, &transport.Message{Name: "svc"}); err != nil {
		t.Fatal(err)
	}
	<-time.After(3 * time.Second) // an idle period of 3 peer timeouts, not synchronisation
	if st := cli.Stats(); st.PeersLost != 0 {
		t.Fatalf("idle links lost: %+v", st)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Fatalf("server accepted %d connections, want 2 (no redial)", n)
	}
}
