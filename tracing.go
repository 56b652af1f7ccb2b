package colugo

import "context"

// SpanKind says which side of a message a [Tracer]'s span covers.
type SpanKind uint8

// Span kinds.
const (
	SpanPublish SpanKind = 1 + iota // a Publish (producer)
	SpanReceive                     // a message delivered to a subscription (consumer)
	SpanRequest                     // a Request or RequestAll (client)
	SpanServe                       // a handler serving a request (server)
)

var spanKindNames = [...]string{"invalid", "publish", "receive", "request", "serve"}

func (k SpanKind) String() string {
	if int(k) < len(spanKindNames) {
		return spanKindNames[k]
	}
	return "invalid"
}

// Tracer is the tracing hook a node calls when set with [WithTracer];
// package otelcolugo implements it with OpenTelemetry. Start begins a span
// for one message of kind on the topic or service name. md is the
// message's metadata for SpanReceive and SpanServe (where a trace context
// arrives), nil otherwise. The ctx Start returns is used in its place: for
// SpanPublish and SpanRequest the metadata set on it with [WithMetadata]
// is what is sent (a tracer adds its trace context to
// [OutgoingMetadata]), for SpanServe it is the handler's ctx. end ends the
// span with the operation's error (nil: success). Start is called from the
// publishing, requesting, delivering and serving goroutines, concurrently;
// it must not block. Without a tracer, nothing of this costs anything.
type Tracer interface {
	Start(ctx context.Context, kind SpanKind, name string, md Metadata) (_ context.Context, end func(error))
}

// WithTracer installs t as the node's tracing hook. Default: none.
func WithTracer(t Tracer) NodeOption { return tracerOption{t} }

type tracerOption struct{ t Tracer }

func (o tracerOption) applyNode(c *nodeConfig) { c.tracer = o.t }
func (o tracerOption) String() string          { return "WithTracer(...)" }

// OutgoingMetadata returns the metadata that WithMetadata set on ctx (a
// copy: the caller's to change), nil for none or when it was invalid.
func OutgoingMetadata(ctx context.Context) Metadata {
	ext, err := outgoingExt(ctx)
	if err != nil {
		return nil
	}
	return decodeMetadata(ext)
}
