// Package colugo is brokerless, typed publish/subscribe and request/reply
// between processes and machines, over ZeroMQ's wire protocol (ZMTP 3).
//
// A process creates a [Node]; nodes find each other through discovery
// (by default a host-local registry and mDNS on the LAN, with the
// transport listening on every interface; or static seeds, or any
// [discovery.Discovery]) and then talk point to point. A topic is a typed
// channel:
//
//	node, err := colugo.NewNode("camera")
//	defer node.Close()
//
//	pub, err := colugo.NewPublisher[Pose](node, "robot/pose")
//	err = pub.Publish(ctx, Pose{X: 1})
//
//	poses, err := colugo.Subscribe[Pose](ctx, node, "robot/pose")
//	for p := range poses { ... } // closed when ctx ends or the node closes
//
// and a service is a typed handler and a typed call:
//
//	srv, err := colugo.Serve(node, "math/add", func(ctx context.Context, r AddReq) (AddResp, error) { ... })
//	resp, err := colugo.Request[AddReq, AddResp](ctx, node, "math/add", AddReq{A: 1, B: 2})
//
// Methods cannot have type parameters, so the typed entry points are
// package functions that take the *Node.
//
// # Delivery
//
// Messages from one publisher arrive in order; there is no order between
// publishers. Delivery is at most once and never blocks the network: a
// subscription absorbs bursts in a queue bounded in bytes ([WithQueueBytes])
// behind its channel, drops by its [DropPolicy] when that is full, and
// counts it in [Node.Stats]; a publisher counts what its subscribers'
// connections missed. A publisher with [WithBackPressure] waits, within a
// bound, for the subscriptions that asked for reliable delivery ([Block]).
// Requests are sent at most once, bounded by the caller's
// context (the node's default timeout, 5s, when it has no deadline); the
// remaining deadline and cancellation reach the handler's context.
//
// # Errors
//
// Setup errors are returned. Per-message failures (a payload that does not
// decode, a codec mismatch, a slow subscriber) are not terminal: they go to
// the function given by [WithErrorHandler], to [Node.Stats] and to the
// logger, never into the value channel. Request outcomes are distinct:
// ctx errors, [ErrNoResponders], [ErrPeerLost], [*RemoteError],
// [*DecodeError], [ErrClosed].
//
// # Discovery and the environment
//
// The COLUGO_DISCOVERY environment variable ([EnvDiscovery]) is the
// operator's word and wins over the program's [WithDiscovery]: "local"
// keeps every packet on the host, "static:host:port,..." uses fixed seeds,
// "none" disables discovery. A host-only value (none, local, seeds on
// loopback; see [Scope]) makes the node listen on 127.0.0.1 only and
// refuse to dial anything but loopback and colugo's abstract Unix sockets,
// whatever discovery or a peer's $describe says. Unset, a node with no
// options uses the host-local registry and mDNS, and listens on every
// interface. The variable does not apply to in-process nodes.
//
// # Testing
//
// Package colugotest gives real nodes on an in-process transport for unit
// tests, without sockets.
package colugo
