package otelcolugo_test

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/otelcolugo"
)

// BenchmarkPublishTraced is a raw publish to a subscriber on the same
// node, without a tracer (the library's cost: what it was before tracing
// existed) and with otelcolugo's (a sampled span per publish and per
// delivery, exported to memory).
func BenchmarkPublishTraced(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "none"
		var opts []colugo.NodeOption
		if traced {
			name = "otel"
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(b.Context()) })
			opts = append(opts, colugo.WithTracer(otelcolugo.NewTracer(tp, nil)))
		}
		b.Run(name, func(b *testing.B) {
			node := colugotest.NewNetwork(b).NewNode("n", opts...)
			ch, err := colugo.Subscribe[[]byte](b.Context(), node, "t", colugo.WithCodec(codec.Raw{}), colugo.WithBuffer(1<<16))
			if err != nil {
				b.Fatal(err)
			}
			pub, err := colugo.NewPublisher[[]byte](node, "t", colugo.WithCodec(codec.Raw{}))
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if err := pub.Publish(b.Context(), payload); err != nil {
					b.Fatal(err)
				}
				<-ch
			}
		})
	}
}
