package mdns

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/colugo-go/colugo/discovery"
)

// seedPeers are announcements as real nodes make them.
var seedPeers = []discovery.Peer{
	{ID: "0123456789abcdef", Name: "camera", Router: "10.0.0.5:40001", Pub: "10.0.0.5:40002", Catalog: "a1b2c3d4e5f6"},
	{ID: "fedcba9876543210", Name: "my robot.arm\\🤖", Router: "127.0.0.1:7000"},
	{ID: "Some-Long.ID_that-is-not-hex-0123456789", Name: strings.Repeat("é", 40), Router: "192.168.1.2:1", Pub: "192.168.1.2:65535"},
}

// packets builds what a zeroconf server sends for a: an announcement
// (PTR, SRV, TXT, A), a goodbye (TTL 0) and a probe (question plus the
// proposed records in the authority section).
func packets(t testing.TB, a announcement, ip net.IP) [][]byte {
	t.Helper()
	inst := a.instance + "." + serviceFQDN
	host := a.host
	if !dns.IsFqdn(host) {
		host += "." + domain
	}
	hdr := func(name string, typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET | 1<<15, Ttl: ttl}
	}
	records := func(ttl uint32) []dns.RR {
		return []dns.RR{
			&dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, ttl), Ptr: inst},
			&dns.SRV{Hdr: hdr(inst, dns.TypeSRV, ttl), Port: uint16(a.port), Target: host},
			&dns.TXT{Hdr: hdr(inst, dns.TypeTXT, ttl), Txt: a.txt},
			&dns.A{Hdr: hdr(host, dns.TypeA, ttl), A: ip},
		}
	}
	var out [][]byte
	for _, m := range []*dns.Msg{
		{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: records(120)[:1], Extra: records(120)[1:]},
		{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: records(0)},
		{Question: []dns.Question{{Name: inst, Qtype: dns.TypeANY, Qclass: dns.ClassINET}}, Ns: records(120)[1:3]},
	} {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzObservePacket feeds the passive listener's decoder (dns.Msg.Unpack,
// else unpackLenient, then observe) arbitrary packets: it must never panic, and every
// observation names a colugo instance in lowercase with a known kind, and
// carries exactly the id parseTXT reads from that instance's TXT. Seeds are
// packets as zeroconf sends them for real announcements.
func FuzzObservePacket(f *testing.F) {
	for _, p := range seedPeers {
		a, err := announce(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, b := range packets(f, a, net.IPv4(10, 0, 0, 5)) {
			f.Add(b)
		}
	}
	// Real python-zeroconf answers (ours, and the seed's own type) and
	// hostile seed-looking records.
	f.Add(pyAnswer(f))
	f.Add(seedAnswer(f))
	for _, b := range hostileSeedPackets(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m dns.Msg
		if err := m.Unpack(data); err != nil {
			lm, _, err := unpackLenient(data)
			if err != nil {
				return
			}
			m = *lm
		}
		for _, o := range observe(&m) {
			if o.kind < obsGoodbye || o.kind > obsText {
				t.Fatalf("observation of kind %d", o.kind)
			}
			if o.instance == "" || o.instance != strings.ToLower(o.instance) {
				t.Fatalf("instance %q", o.instance)
			}
			if o.kind == obsText && o.txt.id != o.id {
				t.Fatalf("TXT observation id %q, its TXT says %q", o.id, o.txt.id)
			}
		}
	})
}

// txtOracle is parseTXT written again from RFC 6763 §6.
func txtOracle(txt []string) map[string]string {
	m := map[string]string{}
	for _, s := range txt {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			continue
		}
		k := strings.ToLower(s[:i])
		if _, seen := m[k]; !seen {
			m[k] = s[i+1:]
		}
	}
	return m
}

// FuzzPeerFrom turns fuzzed browse results into peers: TXT strings (split
// on NUL), an instance name, a port and an IPv4 address. parseTXT must
// match the oracle, and an accepted peer must be usable as announced:
// a valid id, a dialable router on the given port, a pub port in range,
// a short catalog.
func FuzzPeerFrom(f *testing.F) {
	for _, p := range seedPeers {
		a, err := announce(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.Join(a.txt, "\x00"), a.instance, a.port, []byte{10, 0, 0, 5})
	}
	f.Add("v=1\x00ID=x\x00id=y\x00pub=0", `my\ node-x`, 1, []byte{0, 0, 0, 0})
	f.Add("v=1\x00id=ab\x00pub=+80\x00cat="+strings.Repeat("c", 65), `a\.b\\c\255-ab`, 65536, []byte{224, 0, 0, 251})
	f.Add("v=2\x00v=1", "", -1, []byte{127, 0, 0, 1})
	f.Fuzz(func(t *testing.T, txtJoined, instance string, port int, ip []byte) {
		txt := strings.Split(txtJoined, "\x00")
		got := parseTXT(txt)
		want := txtOracle(txt)
		_, hasPub := want["pub"]
		if got.version != want["v"] || got.id != want["id"] || got.pub != want["pub"] || got.cat != want["cat"] || got.hasPub != hasPub {
			t.Fatalf("parseTXT(%q) = %+v, oracle %v", txt, got, want)
		}
		var addrs []net.IP
		if len(ip) == 4 {
			addrs = append(addrs, net.IP(bytes.Clone(ip)))
		}
		p, err := peerFrom(instance, port, txt, addrs, nil)
		if err != nil {
			return
		}
		if validID(p.ID) != nil || len(p.Catalog) > maxCatalogLen {
			t.Fatalf("accepted %+v", p)
		}
		host, ps, err := net.SplitHostPort(p.Router)
		if err != nil || ps != strconv.Itoa(port) || net.ParseIP(host).To4() == nil {
			t.Fatalf("router %q from port %d: %v", p.Router, port, err)
		}
		if p.Pub != "" {
			if _, err := portOf(p.Pub); err != nil {
				t.Fatalf("pub %q: %v", p.Pub, err)
			}
		}
	})
}

// FuzzInstanceName checks the instance names a node announces: one DNS
// label (at most 63 bytes), valid UTF-8 for a UTF-8 name, without the
// characters that would split or escape it, and the name comes back (cut,
// never altered otherwise) from nameFromInstance.
func FuzzInstanceName(f *testing.F) {
	for _, p := range seedPeers {
		f.Add(p.Name, p.ID)
	}
	f.Add("", "x")
	f.Add("a.b", "0123456789abcdef0")
	f.Add("\xff\xfe", "ABC")
	f.Fuzz(func(t *testing.T, name, id string) {
		if validID(id) != nil {
			return
		}
		inst := instanceName(name, id)
		if len(inst) > maxLabel {
			t.Fatalf("instanceName(%q, %q) = %q: %d bytes", name, id, inst, len(inst))
		}
		if strings.ContainsAny(inst, "._\\\x00") {
			t.Fatalf("instanceName(%q, %q) = %q", name, id, inst)
		}
		if utf8.ValidString(name) && !utf8.ValidString(inst) {
			t.Fatalf("instanceName(%q, %q) = %q, not UTF-8", name, id, inst)
		}
		back := nameFromInstance(inst, id)
		if !strings.HasSuffix(inst, "-"+shortID(id)) {
			t.Fatalf("instance %q lacks the id suffix %q", inst, shortID(id))
		}
		if name != "" && utf8.ValidString(name) && !strings.ContainsAny(name, ".\\") && back != "colugo" && !strings.HasPrefix(name, back) {
			var clean strings.Builder
			for _, r := range name {
				if r < 0x20 || r == 0x7f || r == '_' {
					r = '-'
				}
				clean.WriteRune(r)
			}
			if !strings.HasPrefix(clean.String(), back) {
				t.Fatalf("name %q came back as %q", name, back)
			}
		}
	})
}
