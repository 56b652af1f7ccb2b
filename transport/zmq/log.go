package zmq

// Log attribute keys, kept in one place so every message uses the same ones.
const (
	keyPeer     = "peer"
	keyEndpoint = "endpoint"
	keyRole     = "role"
	keyErr      = "err"
	keyTopic    = "topic"
	keyService  = "service"
)
