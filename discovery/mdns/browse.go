package mdns

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/zeroconf/v2"
)

const (
	// minGap spaces triggered rounds: a burst of probes or goodbyes costs
	// at most one query per 100 ms.
	minGap = 100 * time.Millisecond
	// maxSessions bounds the Browse sessions alive at once. A session ends
	// only once its entries are read, so with a stalled event consumer they
	// would pile up; past the bound, rounds are skipped.
	maxSessions = 3
	// sessionLife is how long a round's Browse session stays open. Its
	// query goes out at once and peers answer within milliseconds (other
	// stacks wait 20 to 120 ms); zeroconf would query again 4 s after the
	// first, so a shorter session halves the queries. Answers and
	// announcements that arrive while no session is open still reach the
	// core through the passive listener.
	sessionLife = time.Second
)

// browser runs zeroconf Browse sessions. zeroconf v2.2.0's Browse reports
// an instance only the first time a session sees it, never a change or a
// removal, so each round is a fresh session: it sends a query at once,
// every live peer answers, and the core sees them all again (refreshing
// their expiry and noticing changed ports or TXT). A session ends after
// sessionLife, before zeroconf's own second query. Browse only sends the
// round's query: the passive listener reads the answers (and those Browse
// drops for a record it cannot parse).
type browser struct {
	service string // the type browsed: serviceType, or the seed's
	ifaces  []net.Interface
	refresh time.Duration
	kick    <-chan struct{} // the core asks for a round now
	wg      *sync.WaitGroup
	log     *slog.Logger
	rounds  *atomic.Uint64
	live    atomic.Int32
	// firstOver, when not nil, is called once, by run, when the first
	// round's session window is over: sessionLife after that session
	// started, even if a triggered round cut the session itself short
	// (the answers to its query still reach the passive listener).
	firstOver func()
}

func (b *browser) run(ctx context.Context) {
	var cancelPrev context.CancelFunc
	defer func() {
		if cancelPrev != nil {
			cancelPrev()
		}
	}()
	timer := time.NewTimer(0) // the first round at once
	defer timer.Stop()
	var window *time.Timer // the first session's window, once it started
	var windowC <-chan time.Time
	defer func() {
		if window != nil {
			window.Stop()
		}
	}()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-windowC:
			windowC = nil
			b.firstOver()
			continue
		case <-timer.C:
		case <-b.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				timer.Reset(wait)
				continue
			}
		}
		last = time.Now()
		timer.Reset(b.refresh)
		if n := b.live.Load(); n >= maxSessions {
			b.log.DebugContext(ctx, "mdns: browse round skipped: sessions still draining", slog.Int("sessions", int(n)))
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, sessionLife)
		b.session(sctx)
		if window == nil && b.firstOver != nil {
			window = time.NewTimer(sessionLife)
			windowC = window.C
		}
		if cancelPrev != nil {
			cancelPrev()
		}
		cancelPrev = cancel
	}
}

// session starts one Browse and the goroutine that drains its entries.
// The entries themselves are dropped: the passive listener reads the same
// answers from the same interfaces, in order with the goodbyes (entries
// from a second channel could overtake a goodbye and cancel it), and also
// those Browse rejects. The drain never stops before Browse returns:
// zeroconf blocks on its entries channel, and a blocked Browse never
// returns (it would leak its goroutines and sockets).
func (b *browser) session(ctx context.Context) {
	b.rounds.Add(1)
	b.live.Add(1)
	ch := make(chan *zeroconf.ServiceEntry, 16)
	returned := make(chan struct{})
	b.wg.Go(func() {
		defer close(returned)
		err := zeroconf.Browse(ctx, b.service, domain, ch,
			zeroconf.SelectIfaces(b.ifaces), zeroconf.SelectIPTraffic(zeroconf.IPv4))
		if err != nil {
			b.log.DebugContext(ctx, "mdns: browse failed", slog.Any(logKeyErr, err))
		}
	})
	b.wg.Go(func() {
		defer b.live.Add(-1)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-returned:
				// Browse waits for its sender before returning, so nothing
				// more will be sent; after a setup failure it leaves ch
				// open.
				return
			}
		}
	})
}
