package mdns

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testdata/pyzc-0.47-answer.bin is the answer python3-zeroconf 0.47.3
// (Debian 12) multicast to a PTR query for _colugo-go._tcp.local.,
// captured in a private network namespace: PTR, then SRV, TXT, NSEC
// (bitmap written with 16-bit window and length) and A as additional
// records.
func pyAnswer(t testing.TB) []byte { return fixture(t, "testdata/pyzc-0.47-answer.bin") }

// testdata/seed-0.47-answer.bin is the answer of a real Python colugo
// (seed) node, examples/py/pub.py on python3-zeroconf 0.47.3, to a PTR
// query for its type _colugo._tcp.local., captured the same way: PTR to
// _pub.topic._<uuid>._colugo._tcp.local. (the topic's dot makes two
// labels), then SRV (target: the instance name itself), A (on the instance
// name), TXT topic, socket_type, node_uuid, and the malformed NSEC.
func seedAnswer(t testing.TB) []byte { return fixture(t, "testdata/seed-0.47-answer.bin") }

func fixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The seed's records are of another service type: they are read
// leniently like any packet, but are not colugo-go instances, so they give
// no entries and no observations (and nothing to count as Ignored).
func TestSeedAnswerNotOurs(t *testing.T) {
	t.Parallel()
	m, skipped, err := unpackLenient(seedAnswer(t))
	if err != nil || skipped != 1 || len(m.Answer) != 1 || len(m.Extra) != 3 {
		t.Fatalf("skipped %d, %v, msg:\n%v", skipped, err, m)
	}
	if p, ok := m.Answer[0].(*dns.PTR); !ok || p.Hdr.Name != "_colugo._tcp.local." || !strings.HasPrefix(p.Ptr, "_pub.topic._") {
		t.Fatalf("fixture answer %v", m.Answer[0])
	}
	if es := entriesOf(m); len(es) != 0 {
		t.Fatalf("seed answer gave entries %+v", es)
	}
	if al := aliveIn(m, nil); len(al) != 0 {
		t.Fatalf("seed answer gave alive %q", al)
	}
	if obs := observe(m); len(obs) != 0 {
		t.Fatalf("seed answer gave observations %+v", obs)
	}
}

// hostileSeedPackets are seed-looking responses (type _colugo._tcp,
// instance _<topic>._<uuid>) with the shapes issue 17 lists as bad input:
// a 64-label instance, labels of 63 bytes, '_' and dots everywhere, a TXT
// with hostile keys and values (duplicates, NUL, no '=', 255-byte strings,
// non-UTF-8), goodbyes, and the same under colugo-go's own type.
func hostileSeedPackets(t testing.TB) [][]byte {
	t.Helper()
	hdr := func(name string, typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET | 1<<15, Ttl: ttl}
	}
	labels := make([]string, 0, 64)
	for i := range 64 {
		labels = append(labels, fmt.Sprintf("_l%d", i))
	}
	long := strings.Repeat("x", 63)
	instances := []string{
		strings.Join(labels, ".") + "._colugo._tcp.local.",                         // 64 labels before the type: longer than a name may be
		strings.Join(labels[:40], ".") + "._colugo._tcp.local.",                    // many labels, within 255 bytes
		"_" + long + "._" + long + "._colugo._tcp.local.",                          // two 63-byte labels
		"_robot_" + strings.Repeat("x", 45) + "._u._colugo._tcp.local.",            // the seed's split gives nonsense
		"_._._colugo._tcp.local.", "__._colugo._tcp.local.", "_colugo._tcp.local.", // degenerate
		`_a\.b._\000\255._colugo._tcp.local.`, // escapes
		"_x._y." + serviceFQDN,                // seed-shaped under our type
	}
	txts := [][]string{
		{"topic=pub.topic", "socket_type=1", "node_uuid=10330126-eedb-11f1-b22a-adb5f266efc5"},
		{"topic=", "socket_type=", "node_uuid="},
		{"topic=a_b", "socket_type=9", "node_uuid=_"},
		{"topic=x", "topic=y", "socket_type=1", "socket_type=4", "node_uuid=u", "v=1", "id=seedy"},
		{"\x00", "=", "topic", "socket_type=1\x00", "node_uuid=\xff\xfe", strings.Repeat("t", 255)},
		{"topic=" + strings.Repeat("z", 249)},
	}
	var out [][]byte
	for i, inst := range instances {
		for j, txt := range txts {
			for _, ttl := range []uint32{120, 0} {
				m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
				m.Answer = []dns.RR{&dns.PTR{Hdr: hdr("_colugo._tcp.local.", dns.TypePTR, ttl), Ptr: inst}}
				m.Extra = []dns.RR{
					&dns.SRV{Hdr: hdr(inst, dns.TypeSRV, ttl), Port: uint16(10001 + i*len(txts) + j), Target: inst},
					&dns.TXT{Hdr: hdr(inst, dns.TypeTXT, ttl), Txt: txt},
					&dns.A{Hdr: hdr(inst, dns.TypeA, ttl), A: net.IPv4(127, 0, 0, 1)},
				}
				b, err := m.Pack()
				if err != nil {
					continue // a name too long to pack: the raw packet below has one
				}
				out = append(out, b)
			}
		}
	}
	// A 64-label instance written by hand (miekg/dns refuses to pack a
	// name over 255 bytes, a hostile sender need not).
	raw := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0}
	for i := range 64 {
		l := fmt.Sprintf("_l%d", i)
		raw = append(raw, byte(len(l)))
		raw = append(raw, l...)
	}
	for _, l := range []string{"_colugo", "_tcp", "local"} {
		raw = append(raw, byte(len(l)))
		raw = append(raw, l...)
	}
	raw = append(raw, 0, 0, byte(dns.TypeSRV), 0x80, 1, 0, 0, 0, 120, 0, 7, 0, 0, 0, 0, 0x27, 0x11, 0)
	return append(out, raw)
}

// Hostile seed-looking records never become colugo-go entries (and never
// panic); those made to look like ours are judged by our own rules.
func TestHostileSeedRecords(t *testing.T) {
	t.Parallel()
	for _, pkt := range hostileSeedPackets(t) {
		m, _, err := unpackLenient(pkt)
		if err != nil {
			continue
		}
		for _, e := range entriesOf(m) {
			if e.Instance != "_x._y" {
				t.Fatalf("entry %+v from a packet of another type", e)
			}
			if _, err := peerFrom(e.Instance, e.Port, e.Text, e.AddrIPv4, nil); err == nil && !slices.Contains(e.Text, "id=seedy") {
				t.Fatalf("seed-shaped record under our type accepted: %+v", e)
			}
		}
		for _, o := range observe(m) {
			if o.instance != "_x._y" {
				t.Fatalf("observation %+v from a packet of another type", o)
			}
		}
	}
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
