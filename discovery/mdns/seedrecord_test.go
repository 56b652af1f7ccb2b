package mdns

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/colugo-go/colugo/discovery"
)

func TestCheckSeedName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "pub.topic", "robot/arm", "json.pub.topic", "A-b/9.z", strings.Repeat("x", 24)} {
		if err := CheckSeedName(ok); err != nil {
			t.Errorf("CheckSeedName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "robot_arm", "_x", strings.Repeat("x", 25), "a b", "é", ".a", "a.", "a..b", "a\\.b", "a\x00"} {
		err := CheckSeedName(bad)
		if err == nil {
			t.Errorf("CheckSeedName(%q) accepted it", bad)
			continue
		}
		if !strings.Contains(err.Error(), "seed") {
			t.Errorf("CheckSeedName(%q): %v does not say why", bad, err)
		}
	}
}

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewSeedUUID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		u := newSeedUUID()
		if !uuid4.MatchString(u) || !validSeedUUID(u) || seen[u] {
			t.Fatalf("uuid %q (seen %v)", u, seen[u])
		}
		seen[u] = true
		// The seed's largest topic still fits python-zeroconf 0.47's 63 bytes.
		if n := len("_" + strings.Repeat("x", maxSeedName) + "._" + u); n > maxLabel {
			t.Fatalf("instance part of %d bytes", n)
		}
	}
}

func TestParseSeedInstance(t *testing.T) {
	t.Parallel()
	const u = "10330126-eedb-11f1-b22a-adb5f266efc5"
	for _, c := range []struct{ inst, topic string }{
		{"_pub.topic._" + u, "pub.topic"},
		{"_a._b", "a"},
		{"_json.pub.topic._" + u, "json.pub.topic"},
		{"_robot/arm._" + u, "robot/arm"},
	} {
		topic, uuid, err := parseSeedInstance(c.inst)
		if err != nil || topic != c.topic || uuid != c.inst[strings.LastIndex(c.inst, "._")+2:] {
			t.Errorf("parseSeedInstance(%q) = %q, %q, %v", c.inst, topic, uuid, err)
		}
	}
	for _, bad := range []string{
		"", "_", "__", "_._", "pub._" + u, "_pub." + u, "_robot_arm._" + u, "_pub._", "_pub._a_b",
		"_a\\.b._" + u, "_pub._" + strings.Repeat("u", 65), "_" + strings.Repeat("t", 25) + "._" + u,
		"camera-0123456789abcdef", "_colugo._tcp.local._colugo._tcp.local",
	} {
		if topic, uuid, err := parseSeedInstance(bad); err == nil {
			t.Errorf("parseSeedInstance(%q) = %q, %q", bad, topic, uuid)
		}
	}
}

// The real seed's answer reads as one PUB socket.
func TestSeedAnswerParsed(t *testing.T) {
	t.Parallel()
	m, _, err := unpackLenient(seedAnswer(t))
	if err != nil {
		t.Fatal(err)
	}
	entries, gone, alive := seedSightings(m)
	if len(entries) != 1 || len(gone) != 0 || len(alive) != 0 {
		t.Fatalf("entries %+v, gone %q, alive %q", entries, gone, alive)
	}
	e := entries[0]
	s, err := seedSocketFrom(e.instance, e.port, e.txt, e.v4, nil)
	const u = "10330126-eedb-11f1-b22a-adb5f266efc5"
	want := discovery.SeedSocket{Instance: "_pub.topic._" + u, Topic: "pub.topic", Kind: discovery.SeedPub, UUID: u, Addr: "127.0.0.1:13304"}
	if err != nil || s != want {
		t.Fatalf("socket %+v, %v; want %+v", s, err, want)
	}
	if e.ttl.Seconds() != 120 {
		t.Errorf("ttl %v, want the SRV and A records' 120 s", e.ttl)
	}
	// colugo-go's own answers are not seed records.
	m, _, err = unpackLenient(pyAnswer(t))
	if err != nil {
		t.Fatal(err)
	}
	if entries, gone, alive := seedSightings(m); len(entries)+len(gone)+len(alive) != 0 {
		t.Fatalf("colugo-go answer read as seed: %+v %q %q", entries, gone, alive)
	}
}

// seedPacket is what a seed node multicasts for one socket: PTR, then SRV
// (target: the instance name), A and TXT, with ttl on SRV and A (the
// seed's 120 s) and 4500 s on PTR and TXT, or 0 on all (a goodbye).
func seedPacket(t testing.TB, inst string, port int, ip net.IP, txt []string, ttl uint32) []byte {
	t.Helper()
	hdr := func(name string, typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET | 1<<15, Ttl: ttl}
	}
	long := uint32(4500)
	if ttl == 0 {
		long = 0
	}
	full := inst + "." + seedFQDN
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	m.Answer = []dns.RR{&dns.PTR{Hdr: hdr(seedFQDN, dns.TypePTR, long), Ptr: full}}
	m.Extra = []dns.RR{
		&dns.SRV{Hdr: hdr(full, dns.TypeSRV, ttl), Port: uint16(port), Target: full},
		&dns.A{Hdr: hdr(full, dns.TypeA, ttl), A: ip},
		&dns.TXT{Hdr: hdr(full, dns.TypeTXT, long), Txt: txt},
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seedTXTFor(topic, kind, uuid string) []string {
	return []string{"topic=" + topic, "socket_type=" + kind, "node_uuid=" + uuid}
}

func TestSeedGoodbyeAndAlive(t *testing.T) {
	t.Parallel()
	const inst = "_a.b._u-1"
	var m dns.Msg
	if err := m.Unpack(seedPacket(t, inst, 10001, net.IPv4(10, 0, 0, 1), seedTXTFor("a.b", "4", "u-1"), 0)); err != nil {
		t.Fatal(err)
	}
	entries, gone, alive := seedSightings(&m)
	if len(entries) != 0 || len(alive) != 0 || len(gone) != 1 || gone[0] != strings.ToLower(inst) {
		t.Fatalf("goodbye: entries %+v, gone %q, alive %q", entries, gone, alive)
	}
	// A PTR alone (rate-limited answer) shows the instance alive.
	m = dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Answer: []dns.RR{&dns.PTR{
		Hdr: dns.RR_Header{Name: seedFQDN, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 4500}, Ptr: "_A.b._U-1." + seedFQDN}}}
	entries, gone, alive = seedSightings(&m)
	if len(entries) != 0 || len(gone) != 0 || len(alive) != 1 || alive[0] != "_a.b._u-1" {
		t.Fatalf("PTR alone: entries %+v, gone %q, alive %q", entries, gone, alive)
	}
	// A query shows nothing.
	m.Response = false
	if entries, gone, alive := seedSightings(&m); len(entries)+len(gone)+len(alive) != 0 {
		t.Fatalf("query: %+v %q %q", entries, gone, alive)
	}
}

// Hostile seed-looking records are refused (never panic); the only ones
// accepted are well-formed.
func TestHostileSeedRecordsRefused(t *testing.T) {
	t.Parallel()
	accepted := 0
	for _, pkt := range hostileSeedPackets(t) {
		m, _, err := unpackLenient(pkt)
		if err != nil {
			continue
		}
		entries, _, _ := seedSightings(m)
		for _, e := range entries {
			s, err := seedSocketFrom(e.instance, e.port, e.txt, e.v4, nil)
			if err != nil {
				continue
			}
			accepted++
			checkSeedSocket(t, s, e.port)
		}
	}
	// No hostile instance is well-formed (the 40-label one has '_' in its
	// topic).
	if accepted != 0 {
		t.Errorf("%d hostile records accepted", accepted)
	}
}

// checkSeedSocket fails t unless s is one a seed client could use as the
// seed itself would.
func checkSeedSocket(t *testing.T, s discovery.SeedSocket, port int) {
	t.Helper()
	if err := CheckSeedName(s.Topic); err != nil {
		t.Fatalf("accepted %+v: %v", s, err)
	}
	if !validSeedUUID(s.UUID) || s.Instance != "_"+s.Topic+"._"+s.UUID {
		t.Fatalf("accepted %+v", s)
	}
	if s.Kind != discovery.SeedPub && s.Kind != discovery.SeedRep {
		t.Fatalf("accepted kind %v", s.Kind)
	}
	host, p, err := net.SplitHostPort(s.Addr)
	if err != nil || p != strconv.Itoa(port) || net.ParseIP(host).To4() == nil {
		t.Fatalf("addr %q for port %d: %v", s.Addr, port, err)
	}
}

// FuzzSeedSocketFrom feeds the seed record parser arbitrary instance
// names, TXT (split on NUL), ports and addresses: it never panics, and
// what it accepts is usable as the seed would use it.
func FuzzSeedSocketFrom(f *testing.F) {
	const u = "10330126-eedb-11f1-b22a-adb5f266efc5"
	f.Add("_pub.topic._"+u, strings.Join(seedTXTFor("pub.topic", "1", u), "\x00"), 13304, []byte{127, 0, 0, 1})
	f.Add("_a._b", "TOPIC=a\x00socket_type=4\x00node_uuid=b\x00topic=z", 1, []byte{10, 0, 0, 1})
	f.Add("_robot_arm._u", "topic=robot_arm\x00socket_type=1\x00node_uuid=u", 65536, []byte{224, 0, 0, 251})
	f.Add(`_a\.b._\000`, "topic=a.b\x00socket_type=True\x00node_uuid=\xff", 0, []byte{})
	f.Fuzz(func(t *testing.T, inst, txtJoined string, port int, ip []byte) {
		var addrs []net.IP
		if len(ip) == 4 {
			addrs = append(addrs, net.IP(bytes.Clone(ip)))
		}
		s, err := seedSocketFrom(inst, port, strings.Split(txtJoined, "\x00"), addrs, nil)
		if err != nil {
			return
		}
		if s.Instance != inst {
			t.Fatalf("instance %q from %q", s.Instance, inst)
		}
		checkSeedSocket(t, s, port)
	})
}

// FuzzSeedPacket feeds the SeedDirectory's decoder arbitrary packets
// (strict parse, else lenient, as the listener does): it never panics,
// entries are of the seed's type with an address, and every observation
// names a lowercased instance.
func FuzzSeedPacket(f *testing.F) {
	f.Add(seedAnswer(f))
	f.Add(pyAnswer(f))
	for _, b := range hostileSeedPackets(f) {
		f.Add(b)
	}
	f.Add(seedPacket(f, "_a.b._u-1", 10001, net.IPv4(10, 0, 0, 1), seedTXTFor("a.b", "4", "u-1"), 0))
	f.Add(seedPacket(f, "_a.b._u-1", 10001, net.IPv4(10, 0, 0, 1), seedTXTFor("a.b", "4", "u-1"), 120))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil {
			lm, _, err := unpackLenient(data)
			if err != nil {
				return
			}
			m = lm
		}
		for _, o := range seedObservations(m) {
			if o.kind < obsSeedEntry || o.kind > obsSeedAlive || o.instance == "" || o.instance != strings.ToLower(o.instance) {
				t.Fatalf("observation %+v", o)
			}
			if o.kind == obsSeedEntry {
				if o.seed == nil || len(o.seed.v4) == 0 || strings.ToLower(o.seed.instance) != o.instance {
					t.Fatalf("entry %+v", o.seed)
				}
				if s, err := seedSocketFrom(o.seed.instance, o.seed.port, o.seed.txt, o.seed.v4, nil); err == nil {
					checkSeedSocket(t, s, o.seed.port)
				}
			}
		}
	})
}

func TestSeedSocketFromRefuses(t *testing.T) {
	t.Parallel()
	const inst, topic, u = "_a.b._u-1", "a.b", "u-1"
	ip := []net.IP{net.IPv4(10, 0, 0, 1)}
	if s, err := seedSocketFrom(inst, 10001, seedTXTFor(topic, "4", u), ip, nil); err != nil || s.Kind != discovery.SeedRep {
		t.Fatalf("good record: %+v, %v", s, err)
	}
	for _, c := range []struct {
		name string
		txt  []string
		port int
		ip   []net.IP
	}{
		{"no node_uuid", []string{"topic=a.b", "socket_type=1"}, 10001, ip},
		{"no topic", []string{"socket_type=1", "node_uuid=u-1"}, 10001, ip},
		{"no socket_type", []string{"topic=a.b", "node_uuid=u-1"}, 10001, ip},
		{"other uuid", seedTXTFor(topic, "1", "u-2"), 10001, ip},
		{"other topic", seedTXTFor("a.c", "1", u), 10001, ip},
		{"socket_type 2", seedTXTFor(topic, "2", u), 10001, ip},
		{"socket_type True", seedTXTFor(topic, "True", u), 10001, ip},
		{"colugo-go TXT", []string{"v=1", "id=x"}, 10001, ip},
		{"port 0", seedTXTFor(topic, "1", u), 0, ip},
		{"port 65536", seedTXTFor(topic, "1", u), 65536, ip},
		{"no address", seedTXTFor(topic, "1", u), 10001, nil},
		{"multicast address", seedTXTFor(topic, "1", u), 10001, []net.IP{net.IPv4(224, 0, 0, 251)}},
	} {
		if s, err := seedSocketFrom(inst, c.port, c.txt, c.ip, nil); err == nil {
			t.Errorf("%s: accepted %+v", c.name, s)
		}
	}
}
