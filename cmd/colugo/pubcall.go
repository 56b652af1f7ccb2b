package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/colugo-go/colugo"
	"github.com/colugo-go/colugo/record"
)

func pubFlags(fs *flag.FlagSet, c *cli) {
	fs.Float64Var(&c.rate, "rate", 1, "messages per second")
	fs.IntVar(&c.count, "count", 1, "messages to publish (0: until interrupted)")
	fs.StringVar(&c.codec, "codec", "json", "codec name: json (VALUE must be JSON) or raw (VALUE's bytes)")
	fs.StringVar(&c.typ, "type", "", "type name to advertise (default: the one the topic's subscribers or publishers use, else json.RawMessage)")
}

func callFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.typ, "type", "", "request type name to send (default: the one the server advertises)")
}

// checkValue checks that value suits the codec and returns its payload.
func checkValue(codecName, value string) ([]byte, error) {
	switch codecName {
	case "json":
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
	case "raw":
		return []byte(value), nil
	}
	return nil, usageErr("codec %q: pub and call speak json and raw (protobuf needs descriptors that $describe does not carry yet)", codecName)
}

// typeFor is the type name peers use for topic (publishers first).
func typeFor(peers []colugo.PeerInfo, topic, codecName string) string {
	for _, list := range []func(colugo.PeerInfo) []colugo.TopicInfo{
		func(p colugo.PeerInfo) []colugo.TopicInfo { return p.Topics },
		func(p colugo.PeerInfo) []colugo.TopicInfo { return p.Subscriptions },
	} {
		for _, p := range peers {
			for _, t := range list(p) {
				if t.Name == topic && t.Codec == codecName && t.Type != "[]uint8" && t.Type != "" {
					return t.Type
				}
			}
		}
	}
	return ""
}

func runPub(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 2 {
		return usageErr("pub takes a topic and a value")
	}
	topic := args[0]
	payload, err := checkValue(c.codec, args[1])
	if err != nil {
		return err
	}
	if c.rate <= 0 || c.count < 0 {
		return usageErr("--rate must be positive and --count not negative")
	}
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	// The discovery window: subscribers must find this node and connect
	// before the first message, or they miss it (there is no history).
	if err := sleep(c.ctx, c.wait); err != nil {
		return err
	}
	peers := n.Peers()
	for _, p := range peers {
		for _, t := range append(slices.Clone(p.Topics), p.Subscriptions...) {
			if t.Name == topic && t.Codec != c.codec {
				return fmt.Errorf("topic %q uses codec %s on %s, not %s: its subscribers would refuse these messages", topic, t.Codec, p.Name, c.codec)
			}
		}
	}
	typ := c.typ
	if typ == "" {
		typ = typeFor(peers, topic, c.codec)
	}
	if typ == "" {
		typ = "json.RawMessage"
		if c.codec == "raw" {
			typ = "[]uint8"
		}
	}
	pub, err := colugo.NewPublisher[[]byte](n, topic, colugo.WithCodec(record.Passthrough(c.codec, typ)))
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := sleep(c.ctx, c.wait); err != nil { // let subscribers see the new publisher and connect
		return err
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
			_ = writeJSON(c.stdout, map[string]any{"topic": topic, "published": i + 1})
		} else {
			fmt.Fprintf(c.stderr, "published %d on %s\n", i+1, topic)
		}
	}
	return nil
}

func runCall(c *cli, _ *flag.FlagSet, args []string) error {
	if len(args) != 2 {
		return usageErr("call takes a service and a value")
	}
	service := args[0]
	var v any
	if err := json.Unmarshal([]byte(args[1]), &v); err != nil {
		return usageErr("VALUE is not JSON: %v (quote strings: '\"text\"')", err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	n, err := c.node()
	if err != nil {
		return err
	}
	defer n.Close()
	var server colugo.TopicInfo
	found := until(ctx, c.timeout, func() bool {
		for _, p := range n.Peers() {
			for _, s := range p.Services {
				if s.Name == service {
					server = s
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
	payload, err := checkValue(server.Codec, args[1])
	if err != nil {
		return err
	}
	typ := c.typ
	if typ == "" {
		typ = server.Type
	}
	resp, err := colugo.Request[[]byte, []byte](ctx, n, service, payload, colugo.WithCodec(record.Passthrough(server.Codec, typ)))
	var re *colugo.RemoteError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%s answered %s: %s", service, re.Code, re.Message)
	case errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil:
		return fmt.Errorf("no reply from %q within %v", service, c.timeout)
	case err != nil:
		return err
	}
	if c.json && server.Codec == "json" {
		return writeJSON(c.stdout, json.RawMessage(resp))
	}
	_, err = fmt.Fprintln(c.stdout, render(received{codec: server.Codec, typ: "", data: resp}))
	return err
}
