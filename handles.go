package colugo

import "context"

// Service is the definition of a service: its name, its request and reply
// types and, optionally, its codec, declared once, typically as a package
// variable in a package that both the servers and the clients import, so
// that the two sides cannot disagree on the name or the types:
//
//	var Add = colugo.NewService[AddReq, AddResp]("math/add")
//
//	srv, err := Add.Serve(node, func(ctx context.Context, r AddReq) (AddResp, error) { ... })
//	resp, err := Add.Request(ctx, node, AddReq{A: 2, B: 3})
//
// A Service is not bound to a node: one definition serves every node of a
// program. Its methods are [Serve], [Request] and [RequestAll] with the
// name and types filled in; the definition's options come first, so a
// call's own options override them. The name is checked when used, as by
// those functions. The zero Service has an empty name, which every call
// refuses.
type Service[Req, Resp any] struct {
	name string
	opts []Option
}

// NewService defines a service of name whose requests are Req and replies
// Resp. opts (in practice [WithCodec]) apply to both sides: the servers
// and the requests made through the definition.
func NewService[Req, Resp any](name string, opts ...Option) Service[Req, Resp] {
	return Service[Req, Resp]{name: name, opts: opts}
}

// Name returns the service's name.
func (s Service[Req, Resp]) Name() string { return s.name }

// Serve serves the service on node with handler: [Serve] with the
// definition's name and options.
func (s Service[Req, Resp]) Serve(node *Node, handler func(context.Context, Req) (Resp, error), opts ...ServeOption) (*Server, error) {
	return Serve(node, s.name, handler, withDefinition[ServeOption](s.opts, opts)...)
}

// Request sends req to one server of the service: [Request] with the
// definition's name, types and options.
func (s Service[Req, Resp]) Request(ctx context.Context, node *Node, req Req, opts ...RequestOption) (Resp, error) {
	return Request[Req, Resp](ctx, node, s.name, req, withDefinition[RequestOption](s.opts, opts)...)
}

// RequestAll sends req to every server of the service: [RequestAll] with
// the definition's name, types and options.
func (s Service[Req, Resp]) RequestAll(ctx context.Context, node *Node, req Req, opts ...RequestOption) ([]Reply[Resp], error) {
	return RequestAll[Req, Resp](ctx, node, s.name, req, withDefinition[RequestOption](s.opts, opts)...)
}

// Topic is the definition of a topic: its name, its message type and,
// optionally, its codec, declared once where publishers and subscribers
// share it:
//
//	var Temperature = colugo.NewTopic[Reading]("lab/temperature")
//
//	pub, err := Temperature.Publisher(node)
//	readings, err := Temperature.Subscribe(ctx, node)
//
// Like [Service], it is not bound to a node, its options come before a
// call's own, and its name is checked when used.
type Topic[T any] struct {
	name string
	opts []Option
}

// NewTopic defines a topic of name whose messages are T. opts (in practice
// [WithCodec]) apply to its publishers and subscriptions.
func NewTopic[T any](name string, opts ...Option) Topic[T] {
	return Topic[T]{name: name, opts: opts}
}

// Name returns the topic's name.
func (t Topic[T]) Name() string { return t.name }

// Publisher returns a publisher of the topic on node: [NewPublisher] with
// the definition's name, type and options.
func (t Topic[T]) Publisher(node *Node, opts ...PublisherOption) (*Publisher[T], error) {
	return NewPublisher[T](node, t.name, withDefinition[PublisherOption](t.opts, opts)...)
}

// Subscribe subscribes node to the topic: [Subscribe] with the
// definition's name, type and options.
func (t Topic[T]) Subscribe(ctx context.Context, node *Node, opts ...SubscribeOption) (<-chan T, error) {
	return Subscribe[T](ctx, node, t.name, withDefinition[SubscribeOption](t.opts, opts)...)
}

// SubscribeReceived is [SubscribeReceived] with the definition's name,
// type and options.
func (t Topic[T]) SubscribeReceived(ctx context.Context, node *Node, opts ...SubscribeOption) (<-chan Received[T], error) {
	return SubscribeReceived[T](ctx, node, t.name, withDefinition[SubscribeOption](t.opts, opts)...)
}

// withDefinition returns a definition's options followed by a call's.
func withDefinition[O any](def []Option, call []O) []O {
	if len(def) == 0 {
		return call
	}
	out := make([]O, 0, len(def)+len(call))
	for _, o := range def {
		out = append(out, any(o).(O))
	}
	return append(out, call...)
}
