package otelcolugo_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/internal/testwait"
	"github.com/colugo-go/colugo/otelcolugo"
)

func tracedNetwork(t *testing.T) (*colugotest.Network, *tracetest.InMemoryExporter, colugo.NodeOption) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return colugotest.NewNetwork(t), exp, colugo.WithTracer(otelcolugo.NewTracer(tp, nil))
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name && s.SpanKind == kind {
			return s
		}
	}
	t.Fatalf("no %v span %q in %d spans", kind, name, len(spans))
	return tracetest.SpanStub{}
}

// TestTraceThroughThreeNodes: A requests B, whose handler requests C: one
// trace, each span the child of the one before.
func TestTraceThroughThreeNodes(t *testing.T) {
	net, exp, withTracer := tracedNetwork(t)
	a, b, c := net.NewNode("a", withTracer), net.NewNode("b", withTracer), net.NewNode("c", withTracer)
	if _, err := colugo.Serve(c, "c/echo", func(_ context.Context, s string) (string, error) { return "c:" + s, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Serve(b, "b/relay", func(ctx context.Context, s string) (string, error) {
		return colugo.Request[string, string](ctx, b, "c/echo", s)
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := colugo.Request[string, string](ctx, a, "b/relay", "hi")
	if err != nil || got != "c:hi" {
		t.Fatalf("Request = %q, %v", got, err)
	}
	testwait.Until(t, "four spans", func() bool { return len(exp.GetSpans()) >= 4 })
	spans := exp.GetSpans()
	aClient := spanNamed(t, spans, "send b/relay", trace.SpanKindClient)
	bServer := spanNamed(t, spans, "process b/relay", trace.SpanKindServer)
	bClient := spanNamed(t, spans, "send c/echo", trace.SpanKindClient)
	cServer := spanNamed(t, spans, "process c/echo", trace.SpanKindServer)
	if aClient.Parent.IsValid() {
		t.Errorf("A's client span has a parent: %v", aClient.Parent)
	}
	for _, link := range []struct {
		child, parent tracetest.SpanStub
	}{{bServer, aClient}, {bClient, bServer}, {cServer, bClient}} {
		if link.child.SpanContext.TraceID() != aClient.SpanContext.TraceID() {
			t.Errorf("%s: trace %v, want %v", link.child.Name, link.child.SpanContext.TraceID(), aClient.SpanContext.TraceID())
		}
		if link.child.Parent.SpanID() != link.parent.SpanContext.SpanID() {
			t.Errorf("%s: parent %v, want %s's %v", link.child.Name, link.child.Parent.SpanID(), link.parent.Name, link.parent.SpanContext.SpanID())
		}
	}
	for _, s := range spans {
		var system, dest bool
		for _, kv := range s.Attributes {
			system = system || (kv.Key == "messaging.system" && kv.Value.AsString() == "colugo")
			dest = dest || kv.Key == "messaging.destination.name"
		}
		if !system || !dest {
			t.Errorf("%s: attributes %v", s.Name, s.Attributes)
		}
	}
}

// TestTracePubSub: a subscriber's receive span is the child of the
// publisher's producer span, across nodes.
func TestTracePubSub(t *testing.T) {
	net, exp, withTracer := tracedNetwork(t)
	a, b := net.NewNode("a", withTracer), net.NewNode("b", withTracer)
	ch, err := colugo.Subscribe[int](t.Context(), b, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[int](a, "robot/pose")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitSubscribers(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	if v := colugotest.Next(t, ch, 10*time.Second); v != 7 {
		t.Fatalf("got %d", v)
	}
	testwait.Until(t, "two spans", func() bool { return len(exp.GetSpans()) >= 2 })
	spans := exp.GetSpans()
	prod := spanNamed(t, spans, "send robot/pose", trace.SpanKindProducer)
	cons := spanNamed(t, spans, "receive robot/pose", trace.SpanKindConsumer)
	if cons.SpanContext.TraceID() != prod.SpanContext.TraceID() || cons.Parent.SpanID() != prod.SpanContext.SpanID() {
		t.Fatalf("receive span %v (parent %v) is not the child of the producer span %v", cons.SpanContext, cons.Parent, prod.SpanContext)
	}
}
