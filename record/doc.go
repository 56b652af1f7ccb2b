// Package record records colugo topics to MCAP files and plays them back.
//
// A [Recorder] subscribes a node to topics (all of them, or a list) as
// their publishers are discovered and writes every message it receives to a
// [Writer]: one MCAP channel per topic and codec, with the message bytes
// exactly as they travelled (no decoding, so no user types are needed).
// [Play] publishes a recording again with its original timing scaled by a
// rate, its original codec and type names, optional topic filtering and
// remapping, once or in a loop.
//
// # How colugo maps to MCAP
//
//	colugo codec   MCAP message encoding   MCAP schema
//	json           json (well known)       encoding "jsonschema", name = type name, data "{}" (accepts any JSON)
//	protobuf       protobuf (well known)   encoding "protobuf", name = full message name, data = a
//	                                       FileDescriptorSet when the type is linked into the recording
//	                                       program (protoregistry), else empty
//	raw            raw (not a well-known   none (schema id 0)
//	               encoding; MCAP allows
//	               any string)
//	other          the codec name          none
//
// Every channel also carries metadata "colugo.codec" and "colugo.type", which
// playback prefers over the message encoding and schema name. Log time is
// the time the recorder received the message. Publish time is the same
// value: colugo's public API does not expose the header's send time yet.
// Per-channel sequence numbers count the messages written on that channel.
// At the end of a recording a metadata record "colugo.recording" holds,
// per topic, what the recording node's [colugo.Node.Stats] counted:
// received, dropped (by the subscription) and gaps (missing publisher
// sequence numbers: lost before they reached the recorder).
//
// Files are chunked (zstd by default), with CRCs, message indexes and a
// summary, and open in other MCAP tools. Reading is defensive: a truncated
// or corrupt file gives an error wrapping [ErrCorrupt], never a panic.
package record
