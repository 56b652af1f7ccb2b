package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/colugo-go/colugo"
)

// Protobuf without the program's types: peers advertise, in $describe, the
// serialized FileDescriptorSet of each protobuf topic's and service's
// message type (TopicInfo.Schema, ReplySchema). From it the CLI builds a
// dynamic message (dynamicpb) and converts between the wire bytes and
// protobuf's JSON mapping (protojson).

// errNoSchema means no peer advertised a descriptor for a type.
var errNoSchema = errors.New("no descriptor advertised")

// descriptors caches message descriptors by schema and full name; parsing a
// FileDescriptorSet per message would dominate echo's cost.
var descriptors sync.Map // string(schema) + "\x00" + name -> protoreflect.MessageDescriptor

// messageDescriptor finds the message name in the serialized
// FileDescriptorSet schema.
func messageDescriptor(schema []byte, name string) (protoreflect.MessageDescriptor, error) {
	key := string(schema) + "\x00" + name
	if md, ok := descriptors.Load(key); ok {
		return md.(protoreflect.MessageDescriptor), nil
	}
	if len(schema) == 0 {
		return nil, fmt.Errorf("%s: %w", name, errNoSchema)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(schema, &set); err != nil {
		return nil, fmt.Errorf("%s: advertised descriptor set does not parse: %w", name, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("%s: advertised descriptor set is incomplete: %w", name, err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("%s: not in the advertised descriptor set: %w", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is a %T, not a message", name, d)
	}
	descriptors.Store(key, md)
	return md, nil
}

// protoToJSON decodes a protobuf payload of message type md and returns
// it in protobuf's JSON mapping, compacted.
func protoToJSON(md protoreflect.MessageDescriptor, data []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", md.FullName(), err)
	}
	j, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, j); err != nil { // protojson varies its spacing on purpose
		return j, nil
	}
	return b.Bytes(), nil
}

// jsonToProto encodes the JSON value (protobuf's JSON mapping: field
// names as in the .proto or lowerCamelCase) as a protobuf message of type md.
// Unknown fields and wrong kinds are errors.
func jsonToProto(md protoreflect.MessageDescriptor, value []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal(value, m); err != nil {
		return nil, usageErr("VALUE does not match %s: %v", md.FullName(), err)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// schemaFor finds a descriptor set that defines the message typ among
// what peers advertise: first one advertised for typ itself (a topic, a
// subscription, a service's request or reply), else any set that happens
// to define it.
func schemaFor(peers []colugo.PeerInfo, typ string) ([]byte, protoreflect.MessageDescriptor, error) {
	var all [][]byte
	for _, p := range peers {
		for _, list := range [][]colugo.TopicInfo{p.Topics, p.Subscriptions, p.Services} {
			for _, t := range list {
				if t.Type == typ && len(t.Schema) > 0 {
					if md, err := messageDescriptor(t.Schema, typ); err == nil {
						return t.Schema, md, nil
					}
				}
				if t.ReplyType == typ && len(t.ReplySchema) > 0 {
					if md, err := messageDescriptor(t.ReplySchema, typ); err == nil {
						return t.ReplySchema, md, nil
					}
				}
				all = append(all, t.Schema, t.ReplySchema)
			}
		}
	}
	for _, s := range all {
		if len(s) == 0 {
			continue
		}
		if md, err := messageDescriptor(s, typ); err == nil {
			return s, md, nil
		}
	}
	return nil, nil, fmt.Errorf("protobuf type %s: %w by any peer (a publisher, subscriber or server of it built with colugo's protobuf codec advertises one)", typ, errNoSchema)
}
