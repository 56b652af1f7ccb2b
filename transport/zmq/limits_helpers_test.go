package zmq

// Views of the transport's limit accounting, for tests.

func (t *Transport) pendingHandshakes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending.Len()
}

func (t *Transport) pendingFrom(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingBy[key]
}

func (t *Transport) connsFrom(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inByAddr[key]
}
