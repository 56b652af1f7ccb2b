package mdns

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/libp2p/zeroconf/v2"
	"github.com/miekg/dns"
)

// Reading packets that other stacks get slightly wrong.
//
// miekg/dns rejects a whole message when one record's data does not parse.
// python-zeroconf 0.47 (Debian 12) writes the type bitmap of the NSEC
// record it adds to its answers with 16-bit window and length fields
// ("dns: empty NSEC block"), so zeroconf's Browse drops every answer it
// sends to a query and sees a python-published service only through its
// announcements. The passive listener therefore reads a packet that does
// not unpack with unpackLenient, which skips each record whose data does
// not parse (its header and RDLENGTH still frame it) and keeps the rest.

const (
	dnsHeaderLen = 12
	rrFixedLen   = 10 // type, class, TTL, RDLENGTH after the owner name
)

var errShortMsg = errors.New(errPrefix + " truncated DNS message")

// unpackLenient parses msg like (*dns.Msg).Unpack, except that a record
// whose data does not parse is left out; skipped counts those. It fails
// only when the header, a question, or a record's name, fixed fields or
// length do not fit the message. Trailing bytes are ignored, as Unpack
// does.
func unpackLenient(msg []byte) (m *dns.Msg, skipped int, err error) {
	if len(msg) < dnsHeaderLen {
		return nil, 0, errShortMsg
	}
	m = new(dns.Msg)
	flags := binary.BigEndian.Uint16(msg[2:])
	m.Id = binary.BigEndian.Uint16(msg)
	m.Response = flags&(1<<15) != 0
	m.Opcode = int(flags>>11) & 0xf
	m.Authoritative = flags&(1<<10) != 0
	m.Truncated = flags&(1<<9) != 0
	m.RecursionDesired = flags&(1<<8) != 0
	m.RecursionAvailable = flags&(1<<7) != 0
	m.Zero = flags&(1<<6) != 0
	m.AuthenticatedData = flags&(1<<5) != 0
	m.CheckingDisabled = flags&(1<<4) != 0
	m.Rcode = int(flags & 0xf)
	var counts [4]int
	for i := range counts {
		counts[i] = int(binary.BigEndian.Uint16(msg[4+2*i:]))
	}
	off := dnsHeaderLen
	// The counts are the sender's word: every loop below also stops at
	// the end of the message, and each step consumes at least one byte.
	for i := 0; i < counts[0] && off < len(msg); i++ {
		name, next, err := dns.UnpackDomainName(msg, off)
		if err != nil {
			return nil, 0, err
		}
		if next+4 > len(msg) {
			return nil, 0, errShortMsg
		}
		m.Question = append(m.Question, dns.Question{
			Name:   name,
			Qtype:  binary.BigEndian.Uint16(msg[next:]),
			Qclass: binary.BigEndian.Uint16(msg[next+2:]),
		})
		off = next + 4
	}
	sections := []*[]dns.RR{&m.Answer, &m.Ns, &m.Extra}
	for s, dst := range sections {
		for i := 0; i < counts[s+1] && off < len(msg); i++ {
			rr, next, err := unpackRecord(msg, off)
			if err != nil {
				return nil, 0, err
			}
			off = next
			if rr == nil {
				skipped++
				continue
			}
			*dst = append(*dst, rr)
		}
	}
	return m, skipped, nil
}

// unpackRecord reads the record at off and returns it with the offset of
// the next one. A record whose header fits but whose data does not parse
// comes back nil, with the offset after its data.
func unpackRecord(msg []byte, off int) (dns.RR, int, error) {
	_, next, err := dns.UnpackDomainName(msg, off)
	if err != nil {
		return nil, 0, err
	}
	if next+rrFixedLen > len(msg) {
		return nil, 0, errShortMsg
	}
	end := next + rrFixedLen + int(binary.BigEndian.Uint16(msg[next+8:]))
	if end > len(msg) {
		return nil, 0, errShortMsg
	}
	rr, after, err := dns.UnpackRR(msg, off)
	if err != nil || after != end || rr == nil {
		return nil, end, nil
	}
	return rr, end, nil
}

// entriesOf returns the colugo instances a response announces, as
// zeroconf's Browse would report them from the same packet: one entry per
// SRV record of a _colugo-go._tcp instance with a live TTL, with the TXT of
// that instance and the IPv4 addresses of the SRV target found in the
// packet. An entry without an address is left out (Browse requires one
// too); an entry without TXT is kept, and the core ignores it. Queries
// (probes included) give none.
func entriesOf(m *dns.Msg) []*zeroconf.ServiceEntry {
	if !m.Response {
		return nil
	}
	var srvs []*dns.SRV
	texts := map[string][]string{}
	var addrs []*dns.A
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Ttl == 0 {
				continue // a goodbye: the listener's observe reports it
			}
			switch r := rr.(type) {
			case *dns.SRV:
				if instanceOf(r.Hdr.Name) != "" {
					srvs = append(srvs, r)
				}
			case *dns.TXT:
				if inst := instanceOf(r.Hdr.Name); inst != "" {
					if _, ok := texts[inst]; !ok {
						texts[inst] = r.Txt
					}
				}
			case *dns.A:
				addrs = append(addrs, r)
			}
		}
	}
	var out []*zeroconf.ServiceEntry
	seen := map[string]bool{}
	for _, srv := range srvs {
		inst := instanceOf(srv.Hdr.Name)
		if seen[inst] {
			continue
		}
		seen[inst] = true
		// Browse reports the instance as written (case kept, escaped).
		e := &zeroconf.ServiceEntry{
			ServiceRecord: zeroconf.ServiceRecord{
				Instance: srv.Hdr.Name[:len(srv.Hdr.Name)-len(serviceFQDN)-1],
				Service:  serviceType,
				Domain:   domain,
			},
			HostName: srv.Target,
			Port:     int(srv.Port),
			Text:     texts[inst],
		}
		for _, a := range addrs {
			if strings.EqualFold(a.Hdr.Name, srv.Target) {
				e.AddrIPv4 = append(e.AddrIPv4, a.A)
			}
		}
		if len(e.AddrIPv4) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// aliveIn returns the colugo instances (lowercased) for which a response
// carries a live record (PTR to the instance, SRV or TXT) without being a
// full entry: stacks that rate-limit their multicasts, such as avahi,
// answer a query with the PTR alone when they sent the SRV and address
// less than a second ago. Such a record shows the instance still
// answers; it refreshes a known peer but does not make one.
func aliveIn(m *dns.Msg, full []*zeroconf.ServiceEntry) []string {
	if !m.Response {
		return nil
	}
	done := map[string]bool{}
	for _, e := range full {
		done[strings.ToLower(e.Instance)] = true
	}
	var out []string
	add := func(inst string) {
		if inst != "" && !done[inst] {
			done[inst] = true
			out = append(out, inst)
		}
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Ttl == 0 {
				continue
			}
			switch r := rr.(type) {
			case *dns.PTR:
				if strings.EqualFold(r.Hdr.Name, serviceFQDN) {
					add(instanceOf(r.Ptr))
				}
			case *dns.SRV, *dns.TXT:
				add(instanceOf(r.Header().Name))
			}
		}
	}
	return out
}
