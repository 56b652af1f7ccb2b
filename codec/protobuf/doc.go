// Package protobuf is colugo's protobuf codec. It lives apart from package
// codec so that programs that do not use protobuf do not link it.
//
// For a protobuf topic or service the message type T is the generated
// pointer type, such as *posepb.Pose: generated messages must not be copied.
// The typed layer encodes a T with [Codec.Marshal] and decodes with
// Unmarshal(data, &t), where &t is a **posepb.Pose; [Codec.Unmarshal]
// allocates a fresh message for it, so a received value never aliases one
// that another subscriber holds.
//
// Codec implements [codec.TypeNamer]: the type name on the wire is the
// message's full name ("colugo.examples.Pose"), and a receiver refuses a
// message whose full name differs from its own.
package protobuf
