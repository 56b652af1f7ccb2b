package colugo_test

import (
	"context"
	"testing"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
	"github.com/colugo-go/colugo/colugotest"
)

// echoRaw is a service definition with a codec: both sides must use it.
var echoRaw = colugo.NewService[[]byte, []byte]("test/echo", colugo.WithCodec(codec.Raw{}))

func TestServiceDefinition(t *testing.T) {
	net := colugotest.NewNetwork(t)
	srvNode, cliNode := net.NewNode("srv"), net.NewNode("cli")
	if echoRaw.Name() != "test/echo" {
		t.Fatalf("Name() = %q", echoRaw.Name())
	}
	if _, err := echoRaw.Serve(srvNode, func(_ context.Context, b []byte) ([]byte, error) {
		return append([]byte("echo:"), b...), nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got, err := echoRaw.Request(ctx, cliNode, []byte("hi"))
	if err != nil || string(got) != "echo:hi" {
		t.Fatalf("Request = %q, %v", got, err)
	}
	all, err := echoRaw.RequestAll(ctx, cliNode, []byte("all"))
	if err != nil || len(all) != 1 || all[0].Err != nil || string(all[0].Value) != "echo:all" {
		t.Fatalf("RequestAll = %+v, %v", all, err)
	}
	// The definition's codec reached the server: a request with the
	// default codec (JSON) is refused there.
	_, err = colugo.Request[[]byte, []byte](ctx, cliNode, "test/echo", []byte("x"))
	if err == nil {
		t.Fatal("a JSON request to a raw service succeeded: the definition's codec did not reach Serve")
	}
	// A call's option comes after the definition's and wins.
	_, err = echoRaw.Request(ctx, cliNode, []byte("x"), colugo.WithCodec(codec.JSON{}))
	if err == nil {
		t.Fatal("a call's WithCodec(JSON) did not override the definition's raw codec")
	}
	var zero colugo.Service[int, int]
	if _, err := zero.Request(ctx, cliNode, 1, colugo.WithFailFast()); err == nil {
		t.Fatal("the zero Service's request succeeded")
	}
}

func TestTopicDefinition(t *testing.T) {
	net := colugotest.NewNetwork(t)
	node := net.NewNode("n")
	raw := colugo.NewTopic[[]byte]("test/raw", colugo.WithCodec(codec.Raw{}))
	got, err := raw.Subscribe(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := raw.SubscribeReceived(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := raw.Publisher(node)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Topic() != "test/raw" || raw.Name() != "test/raw" {
		t.Fatalf("names: %q, %q", pub.Topic(), raw.Name())
	}
	if err := pub.Publish(t.Context(), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if v := colugotest.Next(t, got, 5*time.Second); string(v) != "not json" {
		t.Fatalf("Subscribe got %q", v)
	}
	if r := colugotest.Next(t, rec, 5*time.Second); string(r.Value) != "not json" || r.Codec != "raw" {
		t.Fatalf("SubscribeReceived got %+v", r)
	}
	if _, err := colugo.NewTopic[int]("").Publisher(node); err == nil {
		t.Fatal("a publisher of the zero-named topic was made")
	}
}
