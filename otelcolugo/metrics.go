package otelcolugo

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/colugo-go/colugo"
)

// Attribute keys. Topic and service names are attribute values, so a node
// with very many topics makes as many series: the same bound as its
// Stats.
const (
	attrDestination = attribute.Key("messaging.destination.name") // topic or service
	attrSystem      = attribute.Key("messaging.system")
	attrNode        = attribute.Key("colugo.node.name")
	attrOperation   = attribute.Key("messaging.operation.type")
)

// RegisterMetrics registers asynchronous counters that read node.Stats()
// on each collection, and returns the registration (Unregister it before
// closing the node, or when done). Every instrument is a monotonic
// counter named colugo.*, with the attributes messaging.system="colugo",
// colugo.node.name and, per topic or service, messaging.destination.name:
//
//	colugo.topic.published, .received, .delivered, .dropped, .missed, .gaps, .decode_errors
//	colugo.service.requests, .failed, .served, .handler_errors, .decode_errors
//	colugo.transport.send_dropped, .recv_dropped, .peers_lost, .conns_refused
//	colugo.auth_failures
func RegisterMetrics(meter metric.Meter, node *colugo.Node) (metric.Registration, error) {
	if meter == nil || node == nil {
		return nil, errors.New("otelcolugo: nil meter or node")
	}
	type counter struct {
		name, desc string
		topic      func(colugo.TopicStats) uint64
		service    func(colugo.ServiceStats) uint64
		node       func(colugo.Stats) uint64
	}
	counters := []counter{
		{name: "colugo.topic.published", desc: "Messages published by the node's publishers.", topic: func(s colugo.TopicStats) uint64 { return s.Published }},
		{name: "colugo.topic.received", desc: "Messages that reached the node's subscriptions.", topic: func(s colugo.TopicStats) uint64 { return s.Received }},
		{name: "colugo.topic.delivered", desc: "Values offered to subscription channels.", topic: func(s colugo.TopicStats) uint64 { return s.Delivered }},
		{name: "colugo.topic.dropped", desc: "Values discarded by a subscription's drop policy.", topic: func(s colugo.TopicStats) uint64 { return s.Dropped }},
		{name: "colugo.topic.missed", desc: "Messages a subscriber connection missed at this publisher.", topic: func(s colugo.TopicStats) uint64 { return s.Missed }},
		{name: "colugo.topic.gaps", desc: "Messages missing from publishers' sequences.", topic: func(s colugo.TopicStats) uint64 { return s.Gaps }},
		{name: "colugo.topic.decode_errors", desc: "Messages refused by subscriptions.", topic: func(s colugo.TopicStats) uint64 { return s.DecodeErrors }},
		{name: "colugo.service.requests", desc: "Requests the node sent.", service: func(s colugo.ServiceStats) uint64 { return s.Requests }},
		{name: "colugo.service.failed", desc: "Requests the node sent that failed.", service: func(s colugo.ServiceStats) uint64 { return s.Failed }},
		{name: "colugo.service.served", desc: "Requests the node's handlers answered.", service: func(s colugo.ServiceStats) uint64 { return s.Served }},
		{name: "colugo.service.handler_errors", desc: "Requests answered with an error.", service: func(s colugo.ServiceStats) uint64 { return s.HandlerErrs }},
		{name: "colugo.service.decode_errors", desc: "Requests or replies refused.", service: func(s colugo.ServiceStats) uint64 { return s.DecodeErrors }},
		{name: "colugo.transport.send_dropped", desc: "Messages not queued for a full subscriber or requester.", node: func(s colugo.Stats) uint64 { return s.Transport.SendDropped }},
		{name: "colugo.transport.recv_dropped", desc: "Frames refused by the transport.", node: func(s colugo.Stats) uint64 { return s.Transport.RecvDropped }},
		{name: "colugo.transport.peers_lost", desc: "Outbound connections lost.", node: func(s colugo.Stats) uint64 { return s.Transport.PeersLost }},
		{name: "colugo.transport.conns_refused", desc: "Inbound connections refused.", node: func(s colugo.Stats) uint64 { return s.Transport.ConnsRefused }},
		{name: "colugo.auth_failures", desc: "Messages refused by the network key's checks.", node: func(s colugo.Stats) uint64 { return s.AuthFailures }},
	}
	base := []attribute.KeyValue{attrSystem.String("colugo"), attrNode.String(node.Name())}
	nodeAttrs := metric.WithAttributes(base...)
	instruments := make([]metric.Observable, len(counters))
	observers := make([]metric.Int64ObservableCounter, len(counters))
	for i, c := range counters {
		inst, err := meter.Int64ObservableCounter(c.name, metric.WithDescription(c.desc), metric.WithUnit("{message}"))
		if err != nil {
			return nil, err
		}
		instruments[i], observers[i] = inst, inst
	}
	with := func(name string) metric.MeasurementOption {
		return metric.WithAttributes(append(base[:len(base):len(base)], attrDestination.String(name))...)
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := node.Stats() // one snapshot per collection for every instrument
		for i, c := range counters {
			switch {
			case c.topic != nil:
				for name, ts := range st.Topics {
					o.ObserveInt64(observers[i], int64(c.topic(ts)), with(name))
				}
			case c.service != nil:
				for name, ss := range st.Services {
					o.ObserveInt64(observers[i], int64(c.service(ss)), with(name))
				}
			default:
				o.ObserveInt64(observers[i], int64(c.node(st)), nodeAttrs)
			}
		}
		return nil
	}, instruments...)
}
