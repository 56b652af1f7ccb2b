package mdns_test

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/discovery/mdns"
	"github.com/colugo-go/colugo/internal/testwait"
)

type seedDir struct {
	d      *mdns.SeedDirectory
	events <-chan discovery.SeedEvent
}

// startSeedDir starts a SeedDirectory on lo and closes it at cleanup.
func startSeedDir(t *testing.T, opts ...mdns.Option) *seedDir {
	t.Helper()
	opts = append([]mdns.Option{mdns.WithInterfaces("lo"), mdns.WithLogger(logger(t))}, opts...)
	d := mdns.NewSeedDirectory(opts...)
	ev, err := d.Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return &seedDir{d: d, events: ev}
}

// waitSeed returns the next event of kind about a socket of topic, failing
// t after d; other events are logged and skipped.
func waitSeed(t *testing.T, s *seedDir, kind discovery.EventKind, topic string, d time.Duration) discovery.SeedSocket {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("seed event channel closed")
			}
			if ev.Kind == kind && ev.Socket.Topic == topic {
				return ev.Socket
			}
			t.Logf("skipped seed event %v %+v", ev.Kind, ev.Socket)
		case <-deadline.C:
			t.Fatalf("no %v for a seed socket of %q within %v", kind, topic, d)
		}
	}
}

// noSeedEvent fails t if any event arrives within d.
func noSeedEvent(t *testing.T, s *seedDir, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("unexpected seed event %v %+v", ev.Kind, ev.Socket)
		}
	case <-time.After(d):
	}
}

var seedUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestSeedDirectoryAnnounce(t *testing.T) {
	inNS(t, func(t *testing.T) {
		a := startSeedDir(t)
		b := startSeedDir(t)
		began := time.Now()
		withdraw, err := a.d.Announce("go.topic", discovery.SeedPub, 7700)
		if err != nil {
			t.Fatal(err)
		}
		s := waitSeed(t, b, discovery.Joined, "go.topic", timeout)
		t.Logf("Joined %v after Announce", time.Since(began))
		if s.Kind != discovery.SeedPub || !seedUUID.MatchString(s.UUID) || s.Instance != "_go.topic._"+s.UUID || s.Addr != "127.0.0.1:7700" || !s.Colugo {
			t.Fatalf("socket %+v", s)
		}
		noSeedEvent(t, a, 300*time.Millisecond) // never its own record

		began = time.Now()
		if err := withdraw(); err != nil {
			t.Fatal(err)
		}
		if left := waitSeed(t, b, discovery.Left, "go.topic", timeout); left != s {
			t.Fatalf("Left %+v, want %+v", left, s)
		}
		t.Logf("Left %v after withdraw", time.Since(began))
		if err := withdraw(); err != nil { // idempotent
			t.Fatal(err)
		}

		// Announcing again is a new instance (a fresh uuid): seed clients
		// ignore updates, they connect to new instances.
		if _, err := a.d.Announce("go.topic", discovery.SeedPub, 7700); err != nil {
			t.Fatal(err)
		}
		again := waitSeed(t, b, discovery.Joined, "go.topic", timeout)
		if again.UUID == s.UUID || again.Instance == s.Instance {
			t.Fatalf("re-announced with the same uuid: %+v", again)
		}
		if _, err := a.d.Announce("go.svc", discovery.SeedRep, 7701); err != nil {
			t.Fatal(err)
		}
		if rep := waitSeed(t, b, discovery.Joined, "go.svc", timeout); rep.Kind != discovery.SeedRep || rep.Addr != "127.0.0.1:7701" {
			t.Fatalf("rep socket %+v", rep)
		}

		// Close withdraws everything.
		if err := a.d.Close(); err != nil {
			t.Fatal(err)
		}
		gone := map[string]bool{}
		deadline := time.After(timeout)
		for !gone["go.topic"] || !gone["go.svc"] {
			select {
			case ev := <-b.events:
				if ev.Kind == discovery.Left {
					gone[ev.Socket.Topic] = true
				}
			case <-deadline:
				t.Fatalf("after Close, Left within %v only for %v", timeout, gone)
			}
		}
		if _, err := a.d.Announce("go.topic", discovery.SeedPub, 7700); !errors.Is(err, discovery.ErrClosed) {
			t.Fatalf("Announce after Close: %v", err)
		}
		if err := a.d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.d.Start(); !errors.Is(err, discovery.ErrClosed) {
			t.Fatalf("Start after Close: %v", err)
		}
	})
}

func TestSeedDirectoryErrors(t *testing.T) {
	t.Parallel()
	inNS(t, func(t *testing.T) {
		d := mdns.NewSeedDirectory(mdns.WithInterfaces("lo"))
		if _, err := d.Announce("go.topic", discovery.SeedPub, 7700); err == nil {
			t.Error("Announce before Start succeeded")
		}
		if _, err := d.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(); !errors.Is(err, discovery.ErrStarted) {
			t.Errorf("second Start: %v", err)
		}
		for _, c := range []struct {
			name string
			kind discovery.SeedKind
			port int
		}{
			{"robot_arm", discovery.SeedPub, 7700},
			{strings.Repeat("x", 25), discovery.SeedPub, 7700},
			{"ünï", discovery.SeedPub, 7700},
			{"a..b", discovery.SeedPub, 7700},
			{"ok", 2, 7700},
			{"ok", discovery.SeedRep, 0},
			{"ok", discovery.SeedRep, 70000},
		} {
			if _, err := d.Announce(c.name, c.kind, c.port); err == nil {
				t.Errorf("Announce(%q, %v, %d) succeeded", c.name, c.kind, c.port)
			} else {
				t.Logf("Announce(%q, %v, %d): %v", c.name, c.kind, c.port, err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		for _, opts := range [][]mdns.Option{
			{mdns.WithInterfaces("lo"), mdns.WithRefreshInterval(time.Millisecond)},
			{mdns.WithInterfaces("lo"), mdns.WithRefreshInterval(time.Second), mdns.WithExpiry(time.Second)},
			{mdns.WithInterfaces("nope0")},
			{},
		} {
			d := mdns.NewSeedDirectory(opts...)
			if _, err := d.Start(); err == nil {
				t.Errorf("Start with %v succeeded", opts)
			}
			_ = d.Close()
		}
	})
}

// injector multicasts hand-made mDNS responses on lo, as a seed node (or
// a hostile host) would.
type injector struct{ c *net.UDPConn }

func newInjector(t *testing.T) *injector {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &injector{c}
}

func (in *injector) send(t *testing.T, pkt []byte) {
	t.Helper()
	if _, err := in.c.Write(pkt); err != nil {
		t.Fatal(err)
	}
}

// seedResponse packs what a seed node multicasts for its sockets: per
// socket a PTR, an SRV on the instance name (also its target), an A and
// the TXT; ttl on SRV and A (the seed's 120 s), 4500 on PTR and TXT, or 0
// on all (a goodbye).
func seedResponse(t *testing.T, ttl uint32, socks ...discovery.SeedSocket) []byte {
	t.Helper()
	hdr := func(name string, typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET | 1<<15, Ttl: ttl}
	}
	long := uint32(4500)
	if ttl == 0 {
		long = 0
	}
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	for _, s := range socks {
		full := s.Instance + "._colugo._tcp.local."
		host, port, err := net.SplitHostPort(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		var p uint16
		fmt.Sscan(port, &p)
		m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr("_colugo._tcp.local.", dns.TypePTR, long), Ptr: full})
		m.Extra = append(m.Extra,
			&dns.SRV{Hdr: hdr(full, dns.TypeSRV, ttl), Port: p, Target: full},
			&dns.A{Hdr: hdr(full, dns.TypeA, ttl), A: net.ParseIP(host)},
			&dns.TXT{Hdr: hdr(full, dns.TypeTXT, long), Txt: []string{"topic=" + s.Topic, "socket_type=" + fmt.Sprint(uint8(s.Kind)), "node_uuid=" + s.UUID}},
		)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sock(topic, uuid string, kind discovery.SeedKind, addr string) discovery.SeedSocket {
	return discovery.SeedSocket{Instance: "_" + topic + "._" + uuid, Topic: topic, Kind: kind, UUID: uuid, Addr: addr}
}

// TestSeedDirectoryLifecycle: a seed socket is Joined on first sight, Left
// on its goodbye, Left when its SRV and A records' TTL passes unrefreshed
// (or WithExpiry), and Left then Joined when it moves.
func TestSeedDirectoryLifecycle(t *testing.T) {
	inNS(t, func(t *testing.T) {
		in := newInjector(t)
		d := startSeedDir(t)
		s1 := sock("life.a", "u-1", discovery.SeedPub, "127.0.0.1:10001")
		in.send(t, seedResponse(t, 120, s1))
		if got := waitSeed(t, d, discovery.Joined, "life.a", timeout); got != s1 {
			t.Fatalf("Joined %+v, want %+v", got, s1)
		}
		in.send(t, seedResponse(t, 120, s1)) // seen again: nothing new
		noSeedEvent(t, d, 200*time.Millisecond)
		moved := s1
		moved.Addr = "127.0.0.1:10002"
		in.send(t, seedResponse(t, 120, moved))
		if got := waitSeed(t, d, discovery.Left, "life.a", timeout); got != s1 {
			t.Fatalf("Left %+v, want %+v", got, s1)
		}
		if got := waitSeed(t, d, discovery.Joined, "life.a", timeout); got != moved {
			t.Fatalf("Joined %+v, want %+v", got, moved)
		}
		in.send(t, seedResponse(t, 0, moved))
		if got := waitSeed(t, d, discovery.Left, "life.a", timeout); got != moved {
			t.Fatalf("Left %+v, want %+v", got, moved)
		}

		// TTL: records of 2 s that nobody refreshes expire.
		s2 := sock("life.b", "u-2", discovery.SeedRep, "127.0.0.1:10003")
		in.send(t, seedResponse(t, 2, s2))
		waitSeed(t, d, discovery.Joined, "life.b", timeout)
		began := time.Now()
		waitSeed(t, d, discovery.Left, "life.b", timeout)
		el := time.Since(began)
		t.Logf("2 s records left %v after Joined", el)
		if el < 1500*time.Millisecond || el > 4*time.Second {
			t.Errorf("2 s records left after %v", el)
		}

		// WithExpiry wins over the records' TTL.
		e := startSeedDir(t, mdns.WithRefreshInterval(200*time.Millisecond), mdns.WithExpiry(time.Second))
		s3 := sock("life.c", "u-3", discovery.SeedPub, "127.0.0.1:10004")
		in.send(t, seedResponse(t, 120, s3))
		waitSeed(t, e, discovery.Joined, "life.c", timeout)
		began = time.Now()
		waitSeed(t, e, discovery.Left, "life.c", timeout)
		t.Logf("WithExpiry(1s): left %v after Joined", time.Since(began))
		if el := time.Since(began); el < 800*time.Millisecond || el > 3*time.Second {
			t.Errorf("left after %v, want about 1 s", el)
		}
	})
}

// TestSeedDirectoryHostile: malformed seed-looking records are refused and
// counted, never reported; at most 1024 sockets are tracked.
func TestSeedDirectoryHostile(t *testing.T) {
	inNS(t, func(t *testing.T) {
		in := newInjector(t)
		d := startSeedDir(t, mdns.WithLogger(nil))
		bad := []discovery.SeedSocket{
			sock("robot_arm", "u", discovery.SeedPub, "127.0.0.1:10001"),
			sock(strings.Repeat("t", 25), "u", discovery.SeedPub, "127.0.0.1:10001"),
			sock("ok", "u_v", discovery.SeedPub, "127.0.0.1:10001"),
			sock("ok", "u", 2, "127.0.0.1:10001"),
			sock("ok", "u", discovery.SeedPub, "127.0.0.1:0"),
		}
		for _, s := range bad {
			in.send(t, seedResponse(t, 120, s))
		}
		testwait.Until(t, "5 refused records", func() bool { return d.d.Stats().Refused >= uint64(len(bad)) })
		// An instance of 64 labels (over 255 bytes: no packer writes it, a
		// hostile host may): the packet does not parse, and is counted.
		raw := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0}
		for i := range 64 {
			l := fmt.Sprintf("_l%d", i)
			raw = append(append(raw, byte(len(l))), l...)
		}
		for _, l := range []string{"_colugo", "_tcp", "local"} {
			raw = append(append(raw, byte(len(l))), l...)
		}
		raw = append(raw, 0, 0, byte(dns.TypeSRV), 0x80, 1, 0, 0, 0, 120, 0, 7, 0, 0, 0, 0, 0x27, 0x11, 0)
		in.send(t, raw)
		testwait.Until(t, "the 64-label packet counted", func() bool { return d.d.Stats().BadPackets >= 1 })
		noSeedEvent(t, d, 200*time.Millisecond)

		// 1100 distinct sockets, 10 per packet, each packet sent once the
		// previous one has been read (a burst could overflow the socket
		// buffer, which is not what this tests).
		const n, per = 1100, 10
		var joined atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range d.events {
				if ev.Kind == discovery.Joined {
					joined.Add(1)
				}
			}
		}()
		for i := 0; i < n; i += per {
			var socks []discovery.SeedSocket
			for j := i; j < i+per; j++ {
				socks = append(socks, sock(fmt.Sprintf("flood.%d", j), fmt.Sprintf("u-%d", j), discovery.SeedPub, "127.0.0.1:10001"))
			}
			in.send(t, seedResponse(t, 120, socks...))
			want := int64(min(i+per, 1024))
			testwait.Until(t, "the flood's packet read", func() bool {
				return joined.Load() == want && d.d.Stats().Overflow == uint64(max(0, i+per-1024))
			})
		}
		st := d.d.Stats()
		if err := d.d.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
		t.Logf("stats %+v, %d joined", st, joined.Load())
		if joined.Load() != 1024 || st.Overflow != n-1024 {
			t.Errorf("%d sockets joined and %d overflowed, want 1024 and %d", joined.Load(), st.Overflow, n-1024)
		}
	})
}
