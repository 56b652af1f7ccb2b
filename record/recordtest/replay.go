// Package recordtest replays recordings into tests, as net/http/httptest
// serves handlers to them: [Replay] publishes an MCAP file (made by package
// record or `colugo record`) from a node, typically one of a
// colugotest.Network. It lives next to record, not in colugotest, so that
// tests that do not replay recordings do not link MCAP.
package recordtest

import (
	"os"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/record"
)

// Replay publishes the messages of the MCAP recording at path (made by
// record or `colugo record`) from node, each on its recorded topic with its
// recorded codec and type names, in recorded order and as fast as
// possible: the recorded timing is ignored unless opts contain record.Rate.
// It returns when every message has been published, failing tb if the file
// cannot be read or a message cannot be published.
//
// Subscriptions on node itself see every message, in order, before Replay
// returns: same-node delivery is synchronous, so a test that subscribes on
// the node under test and replays into it is deterministic (give the
// subscription a buffer that holds the recording, or
// colugo.WithDropPolicy(colugo.Block(d)) and a reader, or messages are
// dropped by the subscription's policy). Subscribers on other nodes of the
// Network receive the messages as from any publisher: asynchronously, and
// only once they have connected.
//
// opts are record.Play's: record.TopicFilter, record.Remap, record.Rate,
// record.OnProgress (record.Loop would never return).
func Replay(tb testing.TB, node *colugo.Node, path string, opts ...record.PlayOption) record.PlayProgress {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("recordtest: Replay: %v", err)
		return record.PlayProgress{}
	}
	defer f.Close()
	p, err := record.Play(tb.Context(), node, f, append([]record.PlayOption{record.Rate(0)}, opts...)...)
	if err != nil {
		tb.Fatalf("recordtest: Replay %s: %v", path, err)
	}
	return p
}
