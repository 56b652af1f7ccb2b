package bridge

import "github.com/colugo-go/colugo"

// Crash makes b act as if its process had died: its NATS connections are
// cut at once (what they had not written yet, acks included, is lost) and
// node, b's, closes, dropping what its send queues held.
func Crash(b *Bridge, node *colugo.Node) {
	b.dialer.abort()
	_ = node.Close()
}

// StreamName and DurableName are the names a bridge gives an export's
// stream (after its NATS subject) and a site's consumer of it.
var StreamName, DurableName = streamName, durableName
