package colugo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/colugotest"
	"github.com/colugo-go/colugo/discovery"
	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/zmq"
)

// Metadata set with WithMetadata arrives in Received.Metadata and in the
// handler's IncomingMetadata, on this node (no transport), between nodes
// on the in-process transport and over zmq; a handler that reuses its
// ctx for a request of its own does not forward it.
func TestMetadataRoundTrip(t *testing.T) {
	t.Setenv(colugo.EnvKey, "")
	transports := map[string]func() transport.Transport{
		"inproc": nil, // colugotest's network: in-process transport and discovery
		"zmq": func() transport.Transport {
			tr, err := zmq.New()
			if err != nil {
				t.Fatal(err)
			}
			return tr
		},
	}
	for name, newTr := range transports {
		for _, keyed := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "/keyed"}[keyed], func(t *testing.T) {
				var keyOpt []colugo.NodeOption
				if keyed {
					keyOpt = append(keyOpt, colugo.WithKey(key1))
				}
				var srv, cli *colugo.Node
				if newTr == nil {
					net := colugotest.NewNetwork(t)
					srv, cli = net.NewNode("srv", keyOpt...), net.NewNode("cli", keyOpt...)
				} else {
					var err error
					srv, err = colugo.NewNode("srv", append(keyOpt, colugo.WithTransport(newTr()), colugo.WithDiscovery(discovery.Static()))...)
					if err != nil {
						t.Fatal(err)
					}
					defer srv.Close()
					cli, err = colugo.NewNode("cli", append(keyOpt, colugo.WithTransport(newTr()), colugo.WithDiscovery(discovery.Static(srv.Endpoint().Router)))...)
					if err != nil {
						t.Fatal(err)
					}
					defer cli.Close()
				}
				got := make(chan colugo.Metadata, 4)
				if _, err := colugo.Serve(srv, "md/echo", func(ctx context.Context, s string) (string, error) {
					got <- colugo.IncomingMetadata(ctx)
					return s, nil
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := colugo.Serve(srv, "md/forward", func(ctx context.Context, s string) (string, error) {
					return colugo.Request[string, string](ctx, srv, "md/echo", s) // local request, ctx reused
				}); err != nil {
					t.Fatal(err)
				}
				want := colugo.Metadata{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tenant": "x"}
				ctx := colugo.WithMetadata(t.Context(), want)
				check := func(what string, md colugo.Metadata) {
					t.Helper()
					if len(md) != len(want) || md["traceparent"] != want["traceparent"] || md["tenant"] != "x" {
						t.Fatalf("%s: metadata %v, want %v", what, md, want)
					}
				}
				for who, n := range map[string]*colugo.Node{"remote": cli, "local": srv} {
					if err := n.WaitServers(t.Context(), "md/echo", 1); err != nil {
						t.Fatal(err)
					}
					if _, err := colugo.Request[string, string](ctx, n, "md/echo", "hi"); err != nil {
						t.Fatalf("%s request: %v", who, err)
					}
					check(who+" request", <-got)
					if _, err := colugo.Request[string, string](ctx, n, "md/forward", "hi"); err != nil {
						t.Fatalf("%s forward: %v", who, err)
					}
					if md := <-got; md != nil {
						t.Fatalf("%s: a handler's ctx forwarded %v", who, md)
					}
				}
				sub, err := colugo.SubscribeReceived[string](t.Context(), cli, "md/topic")
				if err != nil {
					t.Fatal(err)
				}
				local, err := colugo.SubscribeReceived[string](t.Context(), srv, "md/topic")
				if err != nil {
					t.Fatal(err)
				}
				pub, err := colugo.NewPublisher[string](srv, "md/topic")
				if err != nil {
					t.Fatal(err)
				}
				if err := pub.WaitSubscribers(t.Context(), 2); err != nil {
					t.Fatal(err)
				}
				// The first publishes may race the subscription's setup: publish until one arrives.
				for _, ch := range []<-chan colugo.Received[string]{local, sub} {
					r := publishReceivedUntil(t, pub, ctx, ch)
					check("publish", r.Metadata)
				}
				bad := colugo.WithMetadata(t.Context(), colugo.Metadata{"Bad Key": "v"})
				if err := pub.Publish(bad, "x"); !errors.Is(err, colugo.ErrInvalidMetadata) {
					t.Fatalf("publish with bad metadata: %v", err)
				}
				if _, err := colugo.Request[string, string](bad, cli, "md/echo", "x"); !errors.Is(err, colugo.ErrInvalidMetadata) {
					t.Fatalf("request with bad metadata: %v", err)
				}
			})
		}
	}
}

func publishReceivedUntil(t *testing.T, pub *colugo.Publisher[string], ctx context.Context, ch <-chan colugo.Received[string]) colugo.Received[string] {
	t.Helper()
	var r colugo.Received[string]
	eventually(t, "a publish to arrive", func() bool {
		_ = pub.Publish(ctx, "v")
		select {
		case r = <-ch:
			return true
		default:
			return false
		}
	})
	return r
}
