package otelcolugo_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/otelcolugo"
	"github.com/colugo-go/colugo/transport/inproc"
)

func ExampleRegisterMetrics() {
	node, err := colugo.NewNode("camera", colugo.WithTransport(inproc.NewNetwork().New()), colugo.WithDiscovery(discovery.Static()))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	reader := sdkmetric.NewManualReader() // a Prometheus exporter is a reader too
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reg, err := otelcolugo.RegisterMetrics(provider.Meter("colugo"), node)
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()

	pub, _ := colugo.NewPublisher[string](node, "camera/status")
	_ = pub.Publish(context.Background(), "ok")

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "colugo.topic.published" {
			fmt.Println(m.Name, m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
		}
	}
	// Output: colugo.topic.published 1
}
