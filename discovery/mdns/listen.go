package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The listener is a passive mDNS socket (it never sends) that watches for
// what zeroconf's Browse does not report: goodbyes (TTL 0), probes of new
// nodes, and TXT changes announced by other stacks. It turns them into
// observations for the core, which marks peers as leaving or asks for a
// browse round at once.

var mdnsGroup = net.IPv4(224, 0, 0, 251)

type obsKind uint8

const (
	obsGoodbye obsKind = iota + 1 // the instance withdrew its records
	obsProbe                      // a node is about to announce this instance
	obsText                       // a live TXT record was announced
)

// observation is one fact the listener read from a packet.
type observation struct {
	kind     obsKind
	instance string // lowercased, escaped presentation form
	id       string // from the TXT record in the same packet, if any
	txt      txtFields
}

// listener owns the passive socket.
type listener struct {
	conn *ipv4.PacketConn
	log  *slog.Logger
	bad  func() // counts a packet that does not parse
}

// listen opens the passive socket: UDP 5353 on the wildcard address (Go
// sets SO_REUSEADDR for a multicast bind address, so it shares the port
// with zeroconf and any other stack) and joins 224.0.0.251 on ifaces.
func listen(ifaces []net.Interface, log *slog.Logger, bad func()) (*listener, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 0), Port: 5353})
	if err != nil {
		return nil, fmt.Errorf("%s listen on udp4 5353: %w", errPrefix, err)
	}
	pc := ipv4.NewPacketConn(c)
	joined := 0
	for i := range ifaces {
		if err := pc.JoinGroup(&ifaces[i], &net.UDPAddr{IP: mdnsGroup}); err == nil {
			joined++
		} else {
			log.Debug("mdns: join group failed", slog.String("iface", ifaces[i].Name), slog.Any("err", err))
		}
	}
	if joined == 0 {
		_ = c.Close()
		return nil, fmt.Errorf("%s could not join %v on any of the interfaces", errPrefix, mdnsGroup)
	}
	return &listener{conn: pc, log: log, bad: bad}, nil
}

// close unblocks run.
func (l *listener) close() { _ = l.conn.Close() }

// run reads packets until the socket is closed, sending what it observes
// to out (or dropping it once ctx is done).
func (l *listener) run(ctx context.Context, out chan<- observation) {
	buf := make([]byte, 9000) // mDNS packets fit a jumbo frame (RFC 6762 §17)
	for {
		n, _, _, err := l.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.DebugContext(ctx, "mdns: listener read", slog.Any("err", err))
			time.Sleep(10 * time.Millisecond) // no busy loop on a persistent error
			continue
		}
		var m dns.Msg
		if err := m.Unpack(buf[:n]); err != nil {
			l.bad()
			l.log.DebugContext(ctx, "mdns: ignored packet", slog.Any("err", err))
			continue
		}
		for _, o := range observe(&m) {
			select {
			case out <- o:
			case <-ctx.Done():
				return
			}
		}
	}
}

// instanceOf returns the instance part of a colugo service-instance name
// (lowercased), or "" for any other name.
func instanceOf(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, "."+serviceFQDN) {
		return ""
	}
	return strings.TrimSuffix(name, "."+serviceFQDN)
}

// observe extracts goodbyes, probes and TXT announcements for colugo
// instances from one message.
func observe(m *dns.Msg) []observation {
	ids := map[string]string{}
	texts := map[string]*dns.TXT{}
	all := make([]dns.RR, 0, len(m.Answer)+len(m.Ns)+len(m.Extra))
	all = append(append(append(all, m.Answer...), m.Ns...), m.Extra...)
	for _, rr := range all {
		if t, ok := rr.(*dns.TXT); ok {
			if inst := instanceOf(t.Hdr.Name); inst != "" {
				ids[inst] = parseTXT(t.Txt).id
				texts[inst] = t
			}
		}
	}
	var obs []observation
	if !m.Response {
		// A probe: a question plus the proposed records in the authority
		// section, sent by a node that has just registered.
		seen := map[string]bool{}
		for _, rr := range m.Ns {
			if inst := instanceOf(rr.Header().Name); inst != "" && !seen[inst] {
				seen[inst] = true
				obs = append(obs, observation{kind: obsProbe, instance: inst, id: ids[inst]})
			}
		}
		return obs
	}
	for _, rr := range all {
		p, ok := rr.(*dns.PTR)
		if !ok || p.Hdr.Ttl != 0 || !strings.EqualFold(p.Hdr.Name, serviceFQDN) {
			continue
		}
		if inst := instanceOf(p.Ptr); inst != "" {
			obs = append(obs, observation{kind: obsGoodbye, instance: inst, id: ids[inst]})
		}
	}
	for inst, t := range texts {
		if t.Hdr.Ttl > 0 {
			obs = append(obs, observation{kind: obsText, instance: inst, id: ids[inst], txt: parseTXT(t.Txt)})
		}
	}
	return obs
}
