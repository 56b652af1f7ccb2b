package mdns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/zeroconf/v2"
	"golang.org/x/net/ipv4"

	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/internal/netns"
)

// TestCoreSettlesAfterSending: the core closes Settled on obsSettled only
// once the Joined of the entries before it has been sent, that is taken by
// the consumer (out is unbuffered here), and a second obsSettled does not
// close it again.
func TestCoreSettlesAfterSending(t *testing.T) {
	out := make(chan discovery.Event) // a send completes only when read
	settled := make(chan struct{})
	cfg := config{logger: slog.New(slog.DiscardHandler), expiry: time.Minute, grace: time.Second}
	c := newCore(cfg, "self", "self-inst", nil, out, make(chan struct{}, 1), settled, &counters{})
	obs := make(chan observation, 4)
	for i := range 2 {
		id := fmt.Sprintf("peer%d", i)
		obs <- observation{kind: obsEntry, entry: &zeroconf.ServiceEntry{
			ServiceRecord: zeroconf.ServiceRecord{Instance: "n-" + id},
			Port:          7000 + i, Text: []string{"v=1", "id=" + id}, AddrIPv4: []net.IP{net.IPv4(10, 0, 0, 1)},
		}}
	}
	obs <- observation{kind: obsSettled}
	obs <- observation{kind: obsSettled} // closed at most once
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.run(ctx, obs) })
	defer func() { cancel(); wg.Wait() }()

	for i := range 2 {
		select {
		case <-settled:
			t.Fatalf("Settled closed before Joined %d was sent", i)
		case ev := <-out:
			if ev.Kind != discovery.Joined || ev.Peer.ID != fmt.Sprintf("peer%d", i) {
				t.Fatalf("event %d = %v %+v", i, ev.Kind, ev.Peer)
			}
		}
	}
	select {
	case <-settled:
	case <-time.After(10 * time.Second):
		t.Fatal("Settled not closed after obsSettled")
	}
	// The second obsSettled is handled (a panic would end the test) before
	// an event that follows it.
	obs <- observation{kind: obsEntry, entry: &zeroconf.ServiceEntry{
		ServiceRecord: zeroconf.ServiceRecord{Instance: "n-late"},
		Port:          7100, Text: []string{"v=1", "id=late"}, AddrIPv4: []net.IP{net.IPv4(10, 0, 0, 1)},
	}}
	select {
	case ev := <-out:
		if ev.Peer.ID != "late" {
			t.Fatalf("event %+v, want late's Joined", ev.Peer)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the second obsSettled")
	}
}

// TestListenerSettleReadsQueuedPackets: packets that reached the socket
// before settle, still waiting in its receive queue because run was held
// up, are all read before obsSettled. The packets are multicast on lo
// inside a private network namespace ([netns.Run]).
func TestListenerSettleReadsQueuedPackets(t *testing.T) {
	netns.Run(t, func(t *testing.T) {
		netns.CheckInterfaces(t, "lo")
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.DiscardHandler)
		l, err := listen([]net.Interface{*lo}, log, func() { t.Error("bad packet") })
		if err != nil {
			t.Fatal(err)
		}
		defer l.close()
		l.settleReq = make(chan struct{})
		// The witness, another passive socket on the group, tells when the
		// packets have been delivered (to both sockets).
		witness, err := listen([]net.Interface{*lo}, log, func() {})
		if err != nil {
			t.Fatal(err)
		}
		defer witness.close()

		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		pc := ipv4.NewPacketConn(c)
		if err := pc.SetMulticastInterface(lo); err != nil {
			t.Fatal(err)
		}
		if err := pc.SetMulticastLoopback(true); err != nil {
			t.Fatal(err)
		}
		const n = 20
		want := map[string]bool{}
		for i := range n {
			a, err := announce(discovery.Peer{ID: fmt.Sprintf("q%02d", i), Name: "q", Router: fmt.Sprintf("0.0.0.0:%d", 7000+i)})
			if err != nil {
				t.Fatal(err)
			}
			want[a.instance] = true
			pkt := packets(t, a, net.IPv4(127, 0, 0, 1))[0] // the announcement
			if _, err := pc.WriteTo(pkt, nil, &net.UDPAddr{IP: mdnsGroup, Port: 5353}); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 9000)
		if err := witness.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, _, _, err := witness.conn.ReadFrom(buf); err != nil {
				t.Fatalf("witness read %d of %d packets: %v", i, n, err)
			}
		}

		// run starts after settle: every packet waits in the queue.
		l.settle()
		obs := make(chan observation, 4*n)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { l.run(ctx, obs) })
		defer func() { cancel(); l.close(); wg.Wait() }()
		got := map[string]bool{}
		deadline := time.After(10 * time.Second)
		for {
			select {
			case o := <-obs:
				if o.kind == obsEntry {
					got[o.instance] = true
				}
				if o.kind != obsSettled {
					continue
				}
				if len(got) != n {
					t.Fatalf("obsSettled after %d of the %d queued announcements", len(got), n)
				}
				for inst := range want {
					if !got[inst] {
						t.Fatalf("no entry for %s before obsSettled", inst)
					}
				}
				return
			case <-deadline:
				t.Fatalf("no obsSettled within 10 s; entries read: %d of %d", len(got), n)
			}
		}
	})
}

// TestCoreTracksBounded: past maxTracked nodes, new ones are counted
// (Overflow) and not tracked or reported; one that left makes room.
func TestCoreTracksBounded(t *testing.T) {
	out := make(chan discovery.Event, maxTracked+16)
	cfg := config{logger: slog.New(slog.DiscardHandler), expiry: time.Minute, grace: time.Second}
	stats := &counters{}
	c := newCore(cfg, "self", "self-inst", nil, out, make(chan struct{}, 1), make(chan struct{}), stats)
	entry := func(i int) *zeroconf.ServiceEntry {
		id := fmt.Sprintf("peer%d", i)
		return &zeroconf.ServiceEntry{ServiceRecord: zeroconf.ServiceRecord{Instance: "n-" + id},
			Port: 7000, Text: []string{"v=1", "id=" + id}, AddrIPv4: []net.IP{net.IPv4(10, 0, 0, 1)}}
	}
	ctx := context.Background()
	for i := range maxTracked + 10 {
		c.entry(ctx, entry(i))
	}
	if len(c.peers) != maxTracked || stats.overflow.Load() != 10 || len(out) != maxTracked {
		t.Fatalf("%d tracked, %d overflow, %d events; want %d, 10, %d", len(c.peers), stats.overflow.Load(), len(out), maxTracked, maxTracked)
	}
	delete(c.peers, "peer0") // as expiry does
	c.entry(ctx, entry(maxTracked))
	if _, ok := c.peers[fmt.Sprintf("peer%d", maxTracked)]; !ok {
		t.Error("no room taken after a node left")
	}
}
