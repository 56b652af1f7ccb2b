package otelcolugo

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/colugo-go/colugo"
)

// NewTracer returns a colugo.Tracer (install it with colugo.WithTracer)
// that makes spans with tp following the OpenTelemetry messaging semantic
// conventions, and carries their context in colugo's per-message metadata
// with prop (nil: W3C trace context, the traceparent and tracestate keys):
//
//   - Publish: a producer span "send <topic>", whose context goes with
//     the message;
//   - delivery to a subscription: a consumer span "receive <topic>", a
//     child of the publisher's span (it ends at once: what the program
//     does with the value is its own span);
//   - Request and RequestAll: a client span "send <service>", whose
//     context goes with the request;
//   - a handler: a server span "process <service>", a child of the
//     client's, in the handler's ctx, so that the handler's own requests
//     and publishes join the same trace.
//
// Every span has messaging.system "colugo", messaging.destination.name and
// messaging.operation.type; an error ends its span with status Error.
func NewTracer(tp trace.TracerProvider, prop propagation.TextMapPropagator) colugo.Tracer {
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return &tracer{t: tp.Tracer("github.com/colugo-go/colugo/otelcolugo"), prop: prop}
}

type tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

func (t *tracer) Start(ctx context.Context, kind colugo.SpanKind, name string, md colugo.Metadata) (context.Context, func(error)) {
	var sk trace.SpanKind
	var op string
	switch kind {
	case colugo.SpanPublish:
		sk, op = trace.SpanKindProducer, "send"
	case colugo.SpanReceive:
		sk, op = trace.SpanKindConsumer, "receive"
	case colugo.SpanRequest:
		sk, op = trace.SpanKindClient, "send"
	default: // SpanServe
		sk, op = trace.SpanKindServer, "process"
	}
	if md != nil {
		ctx = t.prop.Extract(ctx, propagation.MapCarrier(md))
	}
	ctx, span := t.t.Start(ctx, op+" "+name, trace.WithSpanKind(sk), trace.WithAttributes(
		attrSystem.String("colugo"), attrDestination.String(name), attrOperation.String(op)))
	if kind == colugo.SpanPublish || kind == colugo.SpanRequest {
		out := colugo.OutgoingMetadata(ctx)
		if out == nil {
			out = colugo.Metadata{}
		}
		t.prop.Inject(ctx, propagation.MapCarrier(out))
		ctx = colugo.WithMetadata(ctx, out)
	}
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
