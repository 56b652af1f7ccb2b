// Package otelcolugo connects colugo to OpenTelemetry. It is a package of
// its own so that programs that do not use OpenTelemetry do not link it:
// the root package never imports it.
//
// RegisterMetrics exposes a Node's Stats as OpenTelemetry asynchronous
// instruments, read when the meter provider collects. To expose them in
// Prometheus form, give it a meter from a provider with the
// go.opentelemetry.io/otel/exporters/prometheus reader:
//
//	exporter, _ := prometheus.New()
//	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
//	reg, err := otelcolugo.RegisterMetrics(provider.Meter("colugo"), node)
//	defer reg.Unregister()
//	http.Handle("/metrics", promhttp.Handler())
//
// NewTracer is a colugo.Tracer (install it with colugo.WithTracer) that
// makes spans around publishes, deliveries, requests and handlers, and
// carries the W3C trace context in colugo's per-message metadata, so that
// a request through several nodes shows as one trace.
package otelcolugo
