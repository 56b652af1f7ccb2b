package mdns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/colugo-go/colugo/discovery"
)

// The records of the Python colugo (the seed): one DNS-SD instance per
// socket, of type _colugo._tcp, named _<topic>._<node uuid> (a dot in the
// topic is a label boundary), with TXT topic=, socket_type= (1 PUB, 4 REP)
// and node_uuid=, an SRV whose target is the instance name itself, and an
// A record on that name (the seed reads only the first address). See the
// project's notes, seed-wire.md.

const (
	seedServiceType = "_colugo._tcp"
	seedFQDN        = seedServiceType + "." + domain // "_colugo._tcp.local."
	// maxSeedName is the seed's limit on topics: python-zeroconf 0.47
	// refuses an instance part over 63 bytes, and the seed's is
	// "_" + topic + "._" + a 36-character uuid.
	maxSeedName = 24
	maxSeedUUID = 64 // the seed's are 36 characters; anything longer is not one of its
)

// CheckSeedName reports whether name can be carried by the seed: 1 to 24
// bytes of ASCII letters, digits, '.', '/' and '-', and no empty label
// (no leading, trailing or doubled dot). '_' in particular is refused:
// the seed splits instance names on it. The error says what is wrong.
func CheckSeedName(name string) error {
	if name == "" || len(name) > maxSeedName {
		return fmt.Errorf("%s name %q cannot be seed-visible: the seed carries 1 to %d bytes", errPrefix, name, maxSeedName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '/' || c == '-') {
			return fmt.Errorf("%s name %q cannot be seed-visible: only letters, digits, '.', '/' and '-' (the seed splits names on '_')", errPrefix, name)
		}
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("%s name %q cannot be seed-visible: a dot is a DNS label boundary, so no empty label", errPrefix, name)
	}
	return nil
}

// validSeedUUID reports whether u can be a seed node_uuid: 1 to 64
// letters, digits and '-' (the seed's are uuid1 text).
func validSeedUUID(u string) bool {
	if u == "" || len(u) > maxSeedUUID {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// newSeedUUID returns a fresh random uuid (version 4 text): the shape of
// the seed's node_uuid, without '_'.
func newSeedUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// seedInstanceOf returns the instance part of a seed service-instance name
// (as written, without the type), or "" for a name of any other type.
func seedInstanceOf(name string) string {
	if len(name) <= len(seedFQDN)+1 || !strings.EqualFold(name[len(name)-len(seedFQDN)-1:], "."+seedFQDN) {
		return ""
	}
	return name[:len(name)-len(seedFQDN)-1]
}

// parseSeedInstance splits a seed instance (presentation form, without the
// type) into topic and uuid: "_pub.topic._1033-…" is topic "pub.topic",
// uuid "1033-…". It refuses any shape the seed does not make: escapes,
// a topic the seed cannot carry, a uuid that is not uuid-like.
func parseSeedInstance(inst string) (topic, uuid string, err error) {
	if strings.ContainsRune(inst, '\\') {
		return "", "", fmt.Errorf("%w: seed instance %q has escapes", errMalformed, inst)
	}
	i := strings.LastIndex(inst, "._")
	if i < 0 || !strings.HasPrefix(inst, "_") {
		return "", "", fmt.Errorf("%w: seed instance %q is not _<topic>._<uuid>", errMalformed, inst)
	}
	topic, uuid = inst[1:i], inst[i+2:]
	if err := CheckSeedName(topic); err != nil {
		return "", "", fmt.Errorf("%w: seed instance %q: bad topic", errMalformed, inst)
	}
	if !validSeedUUID(uuid) {
		return "", "", fmt.Errorf("%w: seed instance %q: bad uuid", errMalformed, inst)
	}
	return topic, uuid, nil
}

// seedTXT reads the seed's TXT keys (RFC 6763 §6: case-insensitive keys,
// the first occurrence wins).
func seedTXT(txt []string) (topic, socketType, uuid string, ok [3]bool) {
	for _, s := range txt {
		k, v, has := strings.Cut(s, "=")
		if !has {
			continue
		}
		switch strings.ToLower(k) {
		case "topic":
			if !ok[0] {
				topic, ok[0] = v, true
			}
		case "socket_type":
			if !ok[1] {
				socketType, ok[1] = v, true
			}
		case "node_uuid":
			if !ok[2] {
				uuid, ok[2] = v, true
			}
		}
	}
	return topic, socketType, uuid, ok
}

// colugoTXT is the TXT entry Announce adds after the seed's three: it
// marks the seed-style records of colugo-go nodes (SeedSocket.Colugo),
// and the seed ignores it (it reads its keys by name).
const colugoTXT = "colugo-go=1"

// seedSocketFrom turns a seed record into a SeedSocket, or reports why it
// is not one (wrapping errMalformed): the instance must be
// _<topic>._<uuid> with TXT topic and node_uuid equal to those, a
// socket_type of 1 or 4, a port in range and an IPv4 address.
func seedSocketFrom(inst string, port int, txt []string, v4 []net.IP, local []*net.IPNet) (discovery.SeedSocket, error) {
	topic, uuid, err := parseSeedInstance(inst)
	if err != nil {
		return discovery.SeedSocket{}, err
	}
	tTopic, tType, tUUID, ok := seedTXT(txt)
	var kind discovery.SeedKind
	switch {
	case !ok[0] || !ok[1] || !ok[2]:
		return discovery.SeedSocket{}, fmt.Errorf("%w: seed TXT %q lacks topic, socket_type or node_uuid", errMalformed, txt)
	case tTopic != topic || tUUID != uuid:
		return discovery.SeedSocket{}, fmt.Errorf("%w: seed TXT topic %q, node_uuid %q do not match the instance %q", errMalformed, tTopic, tUUID, inst)
	case tType == "1":
		kind = discovery.SeedPub
	case tType == "4":
		kind = discovery.SeedRep
	default:
		return discovery.SeedSocket{}, fmt.Errorf("%w: seed socket_type %q", errMalformed, tType)
	}
	if port < 1 || port > 65535 {
		return discovery.SeedSocket{}, fmt.Errorf("%w: bad port %d", errMalformed, port)
	}
	ip := pickIPv4(v4, local)
	if ip == nil {
		return discovery.SeedSocket{}, fmt.Errorf("%w: no IPv4 address", errMalformed)
	}
	return discovery.SeedSocket{
		Instance: inst,
		Topic:    topic,
		Kind:     kind,
		UUID:     uuid,
		Addr:     net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		Colugo:   slices.ContainsFunc(txt, func(s string) bool { return strings.EqualFold(s, colugoTXT) }),
	}, nil
}

// seedEntry is one seed instance a response announces in full.
type seedEntry struct {
	instance string // as written
	port     int
	txt      []string
	v4       []net.IP
	ttl      time.Duration // the shortest of the SRV's and the addresses' TTLs
}

// seedSightings returns what a response shows of seed instances: full
// entries (SRV with a live TTL, its TXT and the A records of its target
// from the same packet; without an address an entry is left out, as
// zeroconf's Browse would), instances withdrawn (a goodbye: PTR or SRV
// with TTL 0) and instances shown alive without a full entry (a live PTR,
// SRV or TXT). Instances are lowercased in gone and alive. A query gives
// nothing.
func seedSightings(m *dns.Msg) (entries []seedEntry, gone, alive []string) {
	if !m.Response {
		return nil, nil, nil
	}
	var srvs []*dns.SRV
	texts := map[string][]string{}
	var addrs []*dns.A
	goneSet := map[string]bool{}
	aliveSet := map[string]bool{}
	addGone := func(inst string) {
		if inst != "" && !goneSet[strings.ToLower(inst)] {
			goneSet[strings.ToLower(inst)] = true
			gone = append(gone, strings.ToLower(inst))
		}
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			switch r := rr.(type) {
			case *dns.PTR:
				if !strings.EqualFold(h.Name, seedFQDN) {
					continue
				}
				inst := seedInstanceOf(r.Ptr)
				if h.Ttl == 0 {
					addGone(inst)
				} else if inst != "" {
					aliveSet[strings.ToLower(inst)] = true
				}
			case *dns.SRV:
				inst := seedInstanceOf(h.Name)
				if inst == "" {
					continue
				}
				if h.Ttl == 0 {
					addGone(inst)
					continue
				}
				srvs = append(srvs, r)
				aliveSet[strings.ToLower(inst)] = true
			case *dns.TXT:
				inst := seedInstanceOf(h.Name)
				if inst == "" || h.Ttl == 0 {
					continue
				}
				if _, ok := texts[strings.ToLower(inst)]; !ok {
					texts[strings.ToLower(inst)] = r.Txt
				}
				aliveSet[strings.ToLower(inst)] = true
			case *dns.A:
				if h.Ttl > 0 {
					addrs = append(addrs, r)
				}
			}
		}
	}
	full := map[string]bool{}
	for _, srv := range srvs {
		inst := seedInstanceOf(srv.Hdr.Name)
		key := strings.ToLower(inst)
		if full[key] || goneSet[key] {
			continue
		}
		e := seedEntry{instance: inst, port: int(srv.Port), txt: texts[key], ttl: time.Duration(srv.Hdr.Ttl) * time.Second}
		for _, a := range addrs {
			if strings.EqualFold(a.Hdr.Name, srv.Target) {
				e.v4 = append(e.v4, a.A)
				e.ttl = min(e.ttl, time.Duration(a.Hdr.Ttl)*time.Second)
			}
		}
		if len(e.v4) > 0 {
			full[key] = true
			entries = append(entries, e)
		}
	}
	for _, rr := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, r := range rr {
			var inst string
			switch x := r.(type) {
			case *dns.PTR:
				if strings.EqualFold(x.Hdr.Name, seedFQDN) {
					inst = seedInstanceOf(x.Ptr)
				}
			case *dns.SRV, *dns.TXT:
				inst = seedInstanceOf(r.Header().Name)
			}
			key := strings.ToLower(inst)
			if inst != "" && aliveSet[key] && !full[key] && !goneSet[key] {
				delete(aliveSet, key) // once
				alive = append(alive, key)
			}
		}
	}
	return entries, gone, alive
}
