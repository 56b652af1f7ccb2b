package zmq

import (
	"testing"
	"time"

	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/internal/zmtptest"
	"github.com/colugo-go/colugo/transport/transporttest"
)

// subscribeRaw sends a ZMTP 3.0 subscription message (add) or its
// cancellation for prefix.
func subscribeRaw(t *testing.T, p *zmtptest.Peer, prefix string, add bool) {
	t.Helper()
	flag := byte(0)
	if add {
		flag = 1
	}
	p.Write(t, zmtptest.Msg([][]byte{append([]byte{flag}, prefix...)}...))
}

// readNames reads data messages until one named end and counts the names
// of the others, skipping commands (PINGs).
func readNames(t *testing.T, p *zmtptest.Peer, end string) map[string]int {
	t.Helper()
	_ = p.Conn.SetReadDeadline(time.Now().Add(testWait))
	got := map[string]int{}
	var frames [][]byte
	for {
		fl, body, err := zmtptest.ReadFrame(p.R)
		if err != nil {
			t.Fatal(err)
		}
		if fl&flagCommand != 0 {
			continue
		}
		frames = append(frames, body)
		if fl&flagMore != 0 {
			continue
		}
		name := string(frames[0][:len(frames[0])-1]) // "name\x00"
		frames = frames[:0]
		if name == end {
			return got
		}
		got[name]++
	}
}

// TestFanoutIndex: exact subscriptions are counted (libzmq semantics), ""
// and partial prefixes (foreign SUBs) match by prefix, a connection holding
// both an exact subscription and a matching prefix gets one copy, and an
// ended connection leaves nothing in the index.
func TestFanoutIndex(t *testing.T) {
	t.Parallel()
	pub, ep := listen(t, &nopHandler{})
	peer := func(prefixes ...string) *zmtptest.Peer {
		p := zmtptest.DialRaw(t, ep.Pub)
		p.Handshake(t, "SUB")
		for _, pre := range append(prefixes, "zz-end\x00") {
			subscribeRaw(t, p, pre, true)
		}
		return p
	}
	a := peer("news\x00", "news\x00") // twice: two cancels to withdraw
	all := peer("")
	partial := peer("ne")
	both := peer("news\x00", "")
	idle := zmtptest.DialRaw(t, ep.Pub)
	idle.Handshake(t, "SUB")
	testwait.Until(t, "", func() bool { return pub.Subscribers("zz-end") == 4 })
	for topic, want := range map[string]int{"news": 4, "nex": 2 + 1, "other": 2, "n": 2, "zz-end": 4} {
		if got := pub.Subscribers(topic); got != want {
			t.Errorf("Subscribers(%q) = %d, want %d", topic, got, want)
		}
	}
	subscribeRaw(t, a, "news\x00", false)
	subscribeRaw(t, a, "zz-probe\x00", true) // ordered after the cancel on a's connection
	testwait.Until(t, "", func() bool { return pub.Subscribers("zz-probe") == 3 })
	if got := pub.Subscribers("news"); got != 4 {
		t.Fatalf("after one of two cancels: Subscribers(news) = %d, want 4", got)
	}
	subscribeRaw(t, a, "news\x00", false)
	testwait.Until(t, "", func() bool { return pub.Subscribers("news") == 3 })

	for _, name := range []string{"news", "nex", "other", "news"} {
		if err := publishNow(pub, pubMsg(name, 1, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := publishNow(pub, pubMsg("zz-end", 1, nil)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    *zmtptest.Peer
		want map[string]int
	}{
		{"a", a, map[string]int{}},
		{"all", all, map[string]int{"news": 2, "nex": 1, "other": 1}},
		{"partial", partial, map[string]int{"news": 2, "nex": 1}},
		{"both", both, map[string]int{"news": 2, "nex": 1, "other": 1}},
	} {
		got := readNames(t, c.p, "zz-end")
		if len(got) != len(c.want) {
			t.Errorf("%s got %v, want %v", c.name, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s got %v, want %v", c.name, got, c.want)
			}
		}
	}

	for _, p := range []*zmtptest.Peer{a, all, partial, both, idle} {
		_ = p.Conn.Close()
	}
	// A connection leaves conns, then the index (teardown): wait for both.
	indexed := func() int {
		n := 0
		pub.fan.Range(func(any, any) bool { n++; return true })
		return n
	}
	testwait.Until(t, "", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return len(pub.conns) == 0 && indexed() == 0 && pub.others.Load() == nil
	})
}

// TestPublishSkipsUnsubscribed: Publish and Subscribers do not touch a
// connection without a matching subscription. Proven by holding the lock of
// such a connection's subscription set: before the index, both waited on
// it (one visit per connection per message).
func TestPublishSkipsUnsubscribed(t *testing.T) {
	t.Parallel()
	pub, ep := listen(t, &nopHandler{})
	rec := transporttest.NewRecorder()
	sub, _ := listen(t, rec)
	subscribeLive(t, pub, sub, rec, "news")
	idle := zmtptest.DialRaw(t, ep.Pub)
	idle.Handshake(t, "SUB")
	var pp *pubPeer
	testwait.Until(t, "", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		for c := range pub.conns {
			if c.pp != nil && !c.pp.wants("news") {
				pp = c.pp
			}
		}
		return pp != nil
	})
	pp.mu.Lock()
	defer pp.mu.Unlock()
	done := make(chan int)
	go func() {
		for i := range 10 {
			_ = publishNow(pub, pubMsg("news", uint64(i+1), nil))
		}
		done <- pub.Subscribers("news")
	}()
	select {
	case n := <-done:
		if n != 1 {
			t.Fatalf("Subscribers(news) = %d, want 1", n)
		}
	case <-time.After(testWait):
		pp.mu.Unlock() // let the publisher go, then fail
		<-done
		pp.mu.Lock()
		t.Fatal("Publish waited on a connection that is not subscribed")
	}
	for i := range 10 {
		if m := nextReal(t, rec.Publishes); m.Header.Seq != uint64(i+1) {
			t.Fatalf("got seq %d, want %d", m.Header.Seq, i+1)
		}
	}
}
