package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/codec"
)

func pubFlags(fs *flag.FlagSet, c *cli) {
	fs.Float64Var(&c.rate, "rate", 1, "messages per second")
	fs.IntVar(&c.count, "count", 1, "messages to publish (0: until interrupted)")
	fs.StringVar(&c.codec, "codec", "", "codec name: json, protobuf (VALUE is JSON, encoded through the advertised descriptors) or raw (VALUE's bytes); default: the topic's, else json")
	fs.StringVar(&c.typ, "type", "", "type name to advertise (default: the one the topic's publishers or subscribers use, else json.RawMessage)")
}

func callFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.typ, "type", "", "request type name to send (default: the one the server advertises)")
}

// parseJSON checks that value is one JSON value and returns it compacted.
func parseJSON(value string) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader([]byte(value)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, usageErr("VALUE is not JSON: %v (quote strings: '\"text\"')", err)
	}
	if dec.More() {
		return nil, usageErr("VALUE holds more than one JSON value")
	}
	var b bytes.Buffer
	_ = json.Compact(&b, []byte(value))
	return b.Bytes(), nil
}

// encodeValue returns the payload of value under codecName. For protobuf,
// value is JSON encoded through the descriptor set schema of type typ.
// seedValue is VALUE as the frame for a seed socket: a JSON string's
// text (the seed's messages are strings: '"Message 1"' sends Message 1),
// any other JSON value as written ('{"a":1}' for a seed program that reads
// JSON).
func seedValue(value string) []byte {
	var s string
	if json.Unmarshal([]byte(value), &s) == nil {
		return []byte(s)
	}
	return []byte(strings.TrimSpace(value))
}

func encodeValue(codecName, typ string, schema []byte, value string) ([]byte, error) {
	switch codecName {
	case "json":
		return parseJSON(value)
	case "raw":
		return []byte(value), nil
	case "protobuf":
		j, err := parseJSON(value)
		if err != nil {
			return nil, err
		}
		if typ == "" {
			return nil, usageErr("protobuf needs a message type: --type NAME (no peer advertises one for this name)")
		}
		md, err := messageDescriptor(schema, typ)
		if err != nil {
			return nil, err
		}
		return jsonToProto(md, j)
	}
	return nil, usageErr("codec %q: pub and call speak json, protobuf and raw", codecName)
}

// endpointsOf lists what peers advertise for topic: publishers first, then
// subscribers, leaving out subscriptions of any codec (tools such as
// record and echo).
func endpointsOf(peers []colugo.PeerInfo, topic string) []colugo.TopicInfo {
	var out []colugo.TopicInfo
	for _, list := range []func(colugo.PeerInfo) []colugo.TopicInfo{
		func(p colugo.PeerInfo) []colugo.TopicInfo { return p.Topics },
		func(p colugo.PeerInfo) []colugo.TopicInfo { return p.Subscriptions },
	} {
		for _, p := range peers {
			for _, t := range list(p) {
				if t.Name == topic && t.Codec != "*" {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// typeFor is the type name peers use for topic under codecName.
func typeFor(eps []colugo.TopicInfo, codecName string) string {
	for _, t := range eps {
		if t.Codec == codecName && t.Type != "[]uint8" && t.Type != "" {
			return t.Type
		}
	}
	return ""
}

func runPub(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 2 {
		return usageErr("pub takes a topic and a value")
	}
	topic := args[0]
	if err := checkName("topic", topic); err != nil {
		return err
	}
	if err := checkCodec(c.codec); err != nil {
		return err
	}
	if c.codec != "raw" {
		if _, err := parseJSON(args[1]); err != nil {
			return err
		}
	}
	if c.rate <= 0 || c.count < 0 {
		return usageErr("--rate must be positive and --count not negative")
	}
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	// Who else has the topic decides the codec and type: up to --wait to
	// find a peer that publishes or subscribes to it.
	var eps []colugo.TopicInfo
	until(c.ctx, c.wait, func() bool {
		eps = endpointsOf(n.Peers(), topic)
		return len(eps) > 0
	})
	if err := c.ctx.Err(); err != nil {
		return err
	}
	codecName := c.codec
	if codecName == "" {
		codecName = "json"
		if c.seed {
			codecName = "raw" // the seed's messages are text
		}
		if len(eps) > 0 {
			codecName = eps[0].Codec
		}
	}
	for _, t := range eps {
		if t.Codec != codecName {
			return fmt.Errorf("topic %q uses codec %s, not %s: its subscribers would refuse these messages", topic, t.Codec, codecName)
		}
	}
	typ := c.typ
	if typ == "" {
		typ = typeFor(eps, codecName)
	}
	var schema []byte
	if codecName == "protobuf" && typ != "" {
		if schema, _, err = schemaFor(n.Peers(), typ); err != nil {
			return err
		}
	}
	payload, err := encodeValue(codecName, typ, schema, args[1])
	if c.seed && codecName == "raw" {
		payload, err = seedValue(args[1]), nil
	}
	if err != nil {
		return err
	}
	if typ == "" {
		typ = "json.RawMessage"
		if codecName == "raw" {
			typ = "[]uint8"
		}
	}
	popts := []colugo.PublisherOption{colugo.WithCodec(codec.PassthroughSchema(codecName, typ, schema))}
	if c.seed { // seed subscribers of topic get it too
		popts = append(popts, colugo.SeedVisible())
	}
	pub, err := colugo.NewPublisher[[]byte](n, topic, popts...)
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := settle(c.ctx, pub, c.wait); err != nil {
		return err
	}
	if pub.Subscribers() == 0 {
		fmt.Fprintf(c.stderr, "colugo pub: no subscriber of %s within %v (--wait); publishing anyway\n", topic, c.wait)
	}
	period := time.Duration(float64(time.Second) / c.rate)
	t := time.NewTicker(period)
	defer t.Stop()
	for i := 0; c.count == 0 || i < c.count; i++ {
		if i > 0 {
			select {
			case <-t.C:
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
		if err := pub.Publish(c.ctx, payload); err != nil {
			return err
		}
		if c.json {
			_ = writeJSON(c.stdout, map[string]any{"topic": topic, "published": i + 1, "subscribers": pub.Subscribers()})
		} else {
			fmt.Fprintf(c.stderr, "published %d on %s (%d subscribers)\n", i+1, topic, pub.Subscribers())
		}
	}
	return nil
}

func runCall(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 2 {
		return usageErr("call takes a service and a value")
	}
	service := args[0]
	if err := checkName("service", service); err != nil {
		return err
	}
	if _, err := parseJSON(args[1]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	var server colugo.TopicInfo
	seed := false // a seed reply server: VALUE's text is the frame
	stop := c.waiting(fmt.Sprintf("a server of %q and its reply", service))
	defer stop()
	found := until(ctx, c.timeout, func() bool {
		for _, p := range append(n.Peers(), seedPeers(n)...) {
			for _, s := range p.Services {
				if s.Name == service {
					server, seed = s, strings.HasPrefix(p.ID, "seed:")
					return true
				}
			}
		}
		return false
	})
	if !found {
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		return fmt.Errorf("no server of %q found within %v", service, c.timeout)
	}
	typ, schema := server.Type, server.Schema
	if c.typ != "" && c.typ != typ {
		typ, schema = c.typ, nil
		if server.Codec == "protobuf" {
			if schema, _, err = schemaFor(n.Peers(), typ); err != nil {
				return err
			}
		}
	}
	if server.Codec == "json" && typ == server.Type && len(server.JSONSchema) > 0 {
		// encoding/json on the server would drop a field its type lacks.
		if f := unknownFields(server.JSONSchema, []byte(args[1])); f != "" {
			return usageErr("VALUE does not match %s (the server's JSON Schema): unknown field %q", typ, f)
		}
	}
	payload, err := encodeValue(server.Codec, typ, schema, args[1])
	if seed {
		payload, err = seedValue(args[1]), nil
	}
	if err != nil {
		if errors.Is(err, errNoSchema) {
			return fmt.Errorf("%s: the server advertises no descriptor for %s: %w", service, typ, err)
		}
		return err
	}
	resp, err := colugo.Request[[]byte, []byte](ctx, n, service, payload, colugo.WithCodec(codec.Passthrough(server.Codec, typ)))
	stop()
	var re *colugo.RemoteError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%s answered %s: %s", service, re.Code, re.Message)
	case errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil:
		return fmt.Errorf("no reply from %q within %v", service, c.timeout)
	case err != nil:
		return err
	}
	m := received{codec: server.Codec, typ: server.ReplyType, data: resp}
	var v json.RawMessage
	switch server.Codec {
	case "json":
		v, err = (&decoder{}).value(n, m)
	case "protobuf":
		md, derr := messageDescriptor(server.ReplySchema, server.ReplyType)
		if derr == nil {
			v, err = protoToJSON(md, resp)
		} else {
			err = derr
		}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "colugo call: cannot decode the reply (%s %s): %v\n", server.Codec, server.ReplyType, err)
	}
	if c.json && v != nil {
		return writeJSON(c.stdout, v)
	}
	_, err = fmt.Fprintln(c.stdout, render(m, v))
	return err
}

// settle waits, for at most d, until pub's subscribers can receive: pub
// keeps no history, so a message published before a subscriber has
// connected is lost to it. pub.WaitSubscribers says when a subscription
// is announced; for subscriptions announced before this node existed (the
// usual case for pub and play) that is at once, while the subscriber's
// node still has to discover this one (host-local discovery polls every
// 100 ms) and connect. So settle returns once there is a subscriber and at
// least half of d has passed since pub was created, or when d has passed.
// Call it right after creating pub.
func settle(ctx context.Context, pub *colugo.Publisher[[]byte], d time.Duration) error {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, d)
	err := pub.WaitSubscribers(wctx, 1)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return sleep(ctx, d/2-time.Since(start))
}
