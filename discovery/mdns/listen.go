package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/zeroconf/v2"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The listener is a passive mDNS socket (it never sends) that reads every
// mDNS packet on the chosen interfaces. It reports the colugo instances
// that responses carry (announcements, and answers to anyone's query,
// including those zeroconf's Browse drops for one bad record), and what
// Browse never reports: goodbyes (TTL 0), probes of new nodes, and TXT
// changes announced by other stacks. It turns them into observations for
// the core, which upserts peers, marks them as leaving or asks for a
// browse round at once.

var mdnsGroup = net.IPv4(224, 0, 0, 251)

type obsKind uint8

const (
	obsGoodbye   obsKind = iota + 1 // the instance withdrew its records
	obsProbe                        // a node is about to announce this instance
	obsText                         // a live TXT record was announced
	obsEntry                        // an instance's SRV, TXT and address: like a browse result
	obsAlive                        // a live record of an instance, not a full entry
	obsSeedEntry                    // a seed instance's SRV, TXT and address (SeedDirectory)
	obsSeedGone                     // a seed instance withdrew its records
	obsSeedAlive                    // a live record of a seed instance, not a full entry
	obsSettled                      // every packet received before the first session's window ended has been read
)

// observation is one fact the listener read from a packet.
type observation struct {
	kind     obsKind
	instance string // lowercased, escaped presentation form
	id       string // from the TXT record in the same packet, if any
	txt      txtFields
	entry    *zeroconf.ServiceEntry // obsEntry only
	seed     *seedEntry             // obsSeedEntry only
}

// listener owns the passive socket.
type listener struct {
	conn *ipv4.PacketConn
	raw  syscall.RawConn // the same socket, to ask how much is waiting; nil if unavailable
	log  *slog.Logger
	bad  func() // counts a packet that does not parse
	// skipped counts records left out of a packet read leniently; set
	// after listen, nil means not counted.
	skipped func(int)
	// decode turns a parsed packet into observations: colugoObservations
	// unless set after listen (the SeedDirectory reads seed records).
	decode func(*dns.Msg) []observation
	// settleReq, when set after listen, is closed by settle; run then
	// sends one obsSettled observation once it has read every packet
	// received before (a Discovery's core closes Settled on it).
	settleReq chan struct{}
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
	raw, err := c.SyscallConn()
	if err != nil {
		raw = nil
	}
	return &listener{conn: pc, raw: raw, log: log, bad: bad, decode: colugoObservations}, nil
}

// close unblocks run.
func (l *listener) close() { _ = l.conn.Close() }

// settle asks run for an obsSettled observation (see settleReq). It is
// called once, and returns at once: the read deadline it sets wakes run
// from a read that would wait.
func (l *listener) settle() {
	close(l.settleReq)
	_ = l.conn.SetReadDeadline(time.Now())
}

// run reads packets until the socket is closed, sending what it observes
// to out (or dropping it once ctx is done).
//
// Once settle has been called, run sends obsSettled after the
// observations of every packet that had reached the socket by then: it
// clears the read deadline settle set and keeps reading while the
// socket's receive queue is not empty (a consumer that lags holds run up,
// and packets wait there meanwhile).
func (l *listener) run(ctx context.Context, out chan<- observation) {
	buf := make([]byte, 9000) // mDNS packets fit a jumbo frame (RFC 6762 §17)
	settle := l.settleReq     // nil once obsSettled is sent
	for {
		n, _, _, err := l.conn.ReadFrom(buf)
		switch {
		case err == nil:
			for _, o := range l.read(ctx, buf[:n]) {
				select {
				case out <- o:
				case <-ctx.Done():
					return
				}
			}
		case ctx.Err() != nil || errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			// settle's wake-up (perhaps after obsSettled was sent).
			_ = l.conn.SetReadDeadline(time.Time{})
		default:
			l.log.DebugContext(ctx, "mdns: listener read", slog.Any("err", err))
			time.Sleep(10 * time.Millisecond) // no busy loop on a persistent error
		}
		if settle == nil {
			continue
		}
		select {
		case <-settle:
		default:
			continue
		}
		_ = l.conn.SetReadDeadline(time.Time{})
		if unread(l.raw) {
			continue // read what already arrived first
		}
		select {
		case out <- observation{kind: obsSettled}:
			settle = nil
		case <-ctx.Done():
			return
		}
	}
}

// read parses one packet and returns what it shows (see decode): for a
// Discovery, the colugo instances it announces (as entries, which refresh
// peers like a browse result), then goodbyes, probes and TXT
// announcements. A packet that miekg/dns
// rejects is read again leniently, without the records that do not parse
// (python-zeroconf 0.47's NSEC); one that does not parse even so is
// counted and ignored.
func (l *listener) read(ctx context.Context, pkt []byte) []observation {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil {
		lm, skipped, lerr := unpackLenient(pkt)
		if lerr != nil {
			l.bad()
			l.log.DebugContext(ctx, "mdns: ignored packet", slog.Any(logKeyErr, err))
			return nil
		}
		if l.skipped != nil {
			l.skipped(skipped)
		}
		l.log.DebugContext(ctx, "mdns: read packet without its bad records", slog.Int("skipped", skipped), slog.Any(logKeyErr, err))
		m = lm
	}
	return l.decode(m)
}

// colugoObservations returns what a packet shows of colugo-go instances:
// the instances it announces (as entries), those it shows alive, then
// goodbyes, probes and TXT announcements.
func colugoObservations(m *dns.Msg) []observation {
	var obs []observation
	entries := entriesOf(m)
	for _, e := range entries {
		obs = append(obs, observation{kind: obsEntry, instance: strings.ToLower(e.Instance), entry: e})
	}
	for _, inst := range aliveIn(m, entries) {
		obs = append(obs, observation{kind: obsAlive, instance: inst})
	}
	return append(obs, observe(m)...)
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
