package colugo

// Log attribute keys, kept in one place so logs stay greppable.
const (
	keyNode     = "node"
	keyNodeID   = "node_id"
	keyTopic    = "topic"
	keyService  = "service"
	keyPeer     = "peer"
	keyRouter   = "router"
	keyPub      = "pub"
	keyEndpoint = "endpoint"
	keyError    = "err"
)
