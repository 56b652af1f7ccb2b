package otelcolugo_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/otelcolugo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect returns the value of every data point, by instrument name and
// destination ("" for node-wide ones).
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Fatalf("%s: %T, want a monotonic int64 sum", m.Name, m.Data)
			}
			out[m.Name] = map[string]int64{}
			for _, dp := range sum.DataPoints {
				if v, _ := dp.Attributes.Value("messaging.system"); v.AsString() != "colugo" {
					t.Fatalf("%s: no messaging.system=colugo in %v", m.Name, dp.Attributes)
				}
				dest, _ := dp.Attributes.Value(attribute.Key("messaging.destination.name"))
				out[m.Name][dest.AsString()] = dp.Value
			}
		}
	}
	return out
}

func TestRegisterMetrics(t *testing.T) {
	node := colugotest.NewNetwork(t).NewNode("n")
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	reg, err := otelcolugo.RegisterMetrics(provider.Meter("test"), node)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Unregister() }()

	got, err := colugo.Subscribe[int](t.Context(), node, "t")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := colugo.NewPublisher[int](node, "t")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := pub.Publish(t.Context(), i); err != nil {
			t.Fatal(err)
		}
		<-got
	}
	if _, err := colugo.Serve(node, "s", func(_ context.Context, x int) (int, error) { return x, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := colugo.Request[int, int](t.Context(), node, "s", 1); err != nil {
		t.Fatal(err)
	}

	m := collect(t, reader)
	st := node.Stats()
	checks := []struct {
		name, dest string
		want       uint64
	}{
		{"colugo.topic.published", "t", st.Topics["t"].Published},
		{"colugo.topic.delivered", "t", st.Topics["t"].Delivered},
		{"colugo.service.requests", "s", st.Services["s"].Requests},
		{"colugo.service.served", "s", st.Services["s"].Served},
		{"colugo.transport.send_dropped", "", st.Transport.SendDropped},
		{"colugo.auth_failures", "", st.AuthFailures},
	}
	for _, c := range checks {
		if v, ok := m[c.name][c.dest]; !ok || uint64(v) != c.want {
			t.Errorf("%s{%s} = %d (present %v), want %d", c.name, c.dest, v, ok, c.want)
		}
	}
	if m["colugo.topic.published"]["t"] != 3 || m["colugo.service.requests"]["s"] != 1 {
		t.Errorf("published %d, requests %d; want 3 and 1", m["colugo.topic.published"]["t"], m["colugo.service.requests"]["s"])
	}
	if len(m) != 17 {
		t.Errorf("%d instruments, want 17", len(m))
	}

	// Unregistered: a collection no longer reads the node.
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if m := collect(t, reader); len(m) != 0 {
		t.Errorf("after Unregister: %d instruments reported", len(m))
	}
}

func TestRegisterMetricsNil(t *testing.T) {
	if _, err := otelcolugo.RegisterMetrics(nil, nil); err == nil {
		t.Fatal("nil meter and node accepted")
	}
}
