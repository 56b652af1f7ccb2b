package mdns

import (
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// testdata/pyzc-0.47-answer.bin is the answer python3-zeroconf 0.47.3
// (Debian 12) multicast to a PTR query for _colugo._tcp.local., captured
// with tcpdump in a private network namespace: PTR, then SRV, TXT, NSEC
// (bitmap written with 16-bit window and length) and A as additional
// records.
func pyAnswer(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/pyzc-0.47-answer.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnpackLenientPythonNSEC(t *testing.T) {
	t.Parallel()
	pkt := pyAnswer(t)
	if err := new(dns.Msg).Unpack(pkt); err == nil {
		t.Fatal("strict Unpack accepts the python answer: the fixture no longer shows the bug")
	} else {
		t.Logf("strict Unpack: %v", err)
	}
	m, skipped, err := unpackLenient(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 || !m.Response || len(m.Answer) != 1 || len(m.Extra) != 3 {
		t.Fatalf("skipped %d, msg:\n%v", skipped, m)
	}
	es := entriesOf(m)
	if len(es) != 1 {
		t.Fatalf("entries: %+v", es)
	}
	e := es[0]
	if e.Instance != "py-node-pyid0001" || e.Port != 7501 || e.HostName != "py-pyid0001.local." ||
		!slices.Equal(e.Text, []string{"v=1", "id=pyid0001", "pub=7502", "cat=pycat"}) ||
		len(e.AddrIPv4) != 1 || !e.AddrIPv4[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("entry %+v", e)
	}
	p, err := peerFrom(e.Instance, e.Port, e.Text, e.AddrIPv4, nil)
	if err != nil || p.ID != "pyid0001" || p.Router != "127.0.0.1:7501" || p.Pub != "127.0.0.1:7502" || p.Name != "py-node" {
		t.Fatalf("peer %+v, %v", p, err)
	}
	// Every prefix is either rejected or read without panicking.
	for n := range len(pkt) {
		if m, _, err := unpackLenient(pkt[:n]); err == nil {
			_ = entriesOf(m)
		}
	}
}

// A message that parses strictly reads the same leniently.
func TestUnpackLenientMatchesStrict(t *testing.T) {
	t.Parallel()
	m := new(dns.Msg)
	m.Response, m.Authoritative, m.Id = true, true, 7
	hdr := func(name string, typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: ttl}
	}
	inst := `My\ node-abc.` + serviceFQDN
	m.Question = []dns.Question{{Name: serviceFQDN, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	m.Answer = []dns.RR{&dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 120), Ptr: inst}}
	m.Extra = []dns.RR{
		&dns.SRV{Hdr: hdr(inst, dns.TypeSRV, 120), Port: 7001, Target: "colugo-abc.local."},
		&dns.TXT{Hdr: hdr(inst, dns.TypeTXT, 120), Txt: []string{"v=1", "id=abc"}},
		&dns.A{Hdr: hdr("colugo-abc.local.", dns.TypeA, 120), A: net.IPv4(10, 0, 0, 1)},
		&dns.A{Hdr: hdr("other.local.", dns.TypeA, 120), A: net.IPv4(10, 0, 0, 2)},
	}
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	strict := new(dns.Msg)
	if err := strict.Unpack(pkt); err != nil {
		t.Fatal(err)
	}
	lenient, skipped, err := unpackLenient(pkt)
	if err != nil || skipped != 0 {
		t.Fatalf("skipped %d, %v", skipped, err)
	}
	if strict.String() != lenient.String() {
		t.Fatalf("strict:\n%v\nlenient:\n%v", strict, lenient)
	}
	es := entriesOf(lenient)
	if len(es) != 1 || es[0].Instance != `My\ node-abc` || len(es[0].AddrIPv4) != 1 || !es[0].AddrIPv4[0].Equal(net.IPv4(10, 0, 0, 1)) {
		t.Fatalf("entries %+v", es)
	}

	if alive := aliveIn(lenient, es); len(alive) != 0 {
		t.Fatalf("full entry also reported alive: %q", alive)
	}
	// A rate-limited answer (PTR alone) shows the instance alive.
	ptrOnly := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Answer: m.Answer}
	if es := entriesOf(ptrOnly); len(es) != 0 {
		t.Fatalf("PTR alone gave entries %+v", es)
	}
	if alive := aliveIn(ptrOnly, nil); !slices.Equal(alive, []string{`my\ node-abc`}) {
		t.Fatalf("alive %q", alive)
	}

	// A goodbye (TTL 0) and a query announce nothing.
	for _, rr := range m.Extra {
		rr.Header().Ttl = 0
	}
	if es := entriesOf(m); len(es) != 0 {
		t.Fatalf("goodbye gave entries %+v", es)
	}
	q := new(dns.Msg)
	q.Ns = m.Extra
	if es := entriesOf(q); len(es) != 0 {
		t.Fatalf("query gave entries %+v", es)
	}
	if alive := aliveIn(q, nil); len(alive) != 0 {
		t.Fatalf("query showed alive %q", alive)
	}
	m.Answer[0].Header().Ttl = 0
	if alive := aliveIn(m, nil); len(alive) != 0 {
		t.Fatalf("goodbye showed alive %q", alive)
	}
}

// Mutated packets: lenient reading never panics, and agrees with strict
// reading whenever that succeeds.
func TestUnpackLenientMutations(t *testing.T) {
	t.Parallel()
	base := pyAnswer(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	pkt := make([]byte, len(base))
	for range 20000 {
		copy(pkt, base)
		for range 1 + rnd.IntN(4) {
			pkt[rnd.IntN(len(pkt))] ^= byte(1 << rnd.IntN(8))
		}
		n := len(pkt)
		if rnd.IntN(4) == 0 {
			n = rnd.IntN(len(pkt) + 1)
		}
		lenient, _, err := unpackLenient(pkt[:n])
		if err != nil {
			continue
		}
		_ = aliveIn(lenient, entriesOf(lenient))
		_ = observe(lenient)
		strict := new(dns.Msg)
		if strict.Unpack(pkt[:n]) == nil && strict.String() != lenient.String() {
			t.Fatalf("packet %x\nstrict:\n%v\nlenient:\n%v", pkt[:n], strict, lenient)
		}
	}
}
