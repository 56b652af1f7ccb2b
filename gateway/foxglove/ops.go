package foxglove

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Binary opcodes, client to server and server to client (spec docs/spec.md).
const (
	opClientMessageData  = 0x01
	opServiceCallRequest = 0x02

	opMessageData         = 0x01
	opServiceCallResponse = 0x03
)

// maxOpItems bounds the entries of one JSON op (subscriptions, ids,
// channels), so that one frame cannot make the gateway do unbounded work.
const maxOpItems = 1024

// op is one decoded client operation, text or binary.
type op struct {
	Op              string          `json:"op"`
	Subscriptions   []subscription  `json:"subscriptions,omitempty"`
	SubscriptionIDs []uint32        `json:"subscriptionIds,omitempty"`
	Channels        []clientChannel `json:"channels,omitempty"`
	ChannelIDs      []uint32        `json:"channelIds,omitempty"`

	// Binary ops: clientMessageData (ID = channel) and serviceCallRequest
	// (ID = service, CallID, Encoding).
	ID       uint32 `json:"-"`
	CallID   uint32 `json:"-"`
	Encoding string `json:"-"`
	Payload  []byte `json:"-"`
}

type subscription struct {
	ID        uint32 `json:"id"`
	ChannelID uint32 `json:"channelId"`
}

type clientChannel struct {
	ID             uint32 `json:"id"`
	Topic          string `json:"topic"`
	Encoding       string `json:"encoding"`
	SchemaName     string `json:"schemaName"`
	Schema         string `json:"schema,omitempty"`
	SchemaEncoding string `json:"schemaEncoding,omitempty"`
}

var errBadOp = errors.New("bad op")

// Op names of binary frames, as op.Op.
const (
	nameClientMessageData  = "clientMessageData"
	nameServiceCallRequest = "serviceCallRequest"
)

// decodeOp decodes a client frame: a JSON object with "op" when text, a
// binary op otherwise. It never panics; its result holds at most
// maxOpItems entries per list and aliases data for binary payloads.
func decodeOp(text bool, data []byte) (*op, error) {
	if text {
		var o op
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, fmt.Errorf("%w: malformed JSON: %v", errBadOp, err)
		}
		switch o.Op {
		case "":
			return nil, fmt.Errorf("%w: no \"op\" field", errBadOp)
		case "subscribe", "unsubscribe", "advertise", "unadvertise", "subscribeConnectionGraph", "unsubscribeConnectionGraph":
		default:
			return nil, fmt.Errorf("%w: unsupported op %q", errBadOp, truncate(o.Op, 64))
		}
		if len(o.Subscriptions) > maxOpItems || len(o.SubscriptionIDs) > maxOpItems ||
			len(o.Channels) > maxOpItems || len(o.ChannelIDs) > maxOpItems {
			return nil, fmt.Errorf("%w: %s with more than %d entries", errBadOp, o.Op, maxOpItems)
		}
		return &o, nil
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty binary frame", errBadOp)
	}
	switch data[0] {
	case opClientMessageData:
		if len(data) < 5 {
			return nil, fmt.Errorf("%w: clientMessageData of %d bytes, want at least 5", errBadOp, len(data))
		}
		return &op{Op: nameClientMessageData, ID: binary.LittleEndian.Uint32(data[1:]), Payload: data[5:]}, nil
	case opServiceCallRequest:
		if len(data) < 13 {
			return nil, fmt.Errorf("%w: serviceCallRequest of %d bytes, want at least 13", errBadOp, len(data))
		}
		n := binary.LittleEndian.Uint32(data[9:])
		if uint64(n) > uint64(len(data)-13) {
			return nil, fmt.Errorf("%w: serviceCallRequest encoding length %d past the frame's end", errBadOp, n)
		}
		return &op{Op: nameServiceCallRequest, ID: binary.LittleEndian.Uint32(data[1:]),
			CallID: binary.LittleEndian.Uint32(data[5:]), Encoding: string(data[13 : 13+n]), Payload: data[13+n:]}, nil
	}
	return nil, fmt.Errorf("%w: unknown binary opcode %d", errBadOp, data[0])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
