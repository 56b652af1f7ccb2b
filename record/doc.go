// Package record records colugo topics to MCAP files and plays them back.
//
// A [Recorder] subscribes a node to topics (all of them, or a list and
// patterns; with [WithSeed], those of the Python colugo's seed nodes too) as
// their publishers are discovered, once per topic whatever codecs its
// publishers use, and writes every message it receives to a [Writer]: one
// MCAP channel per topic, codec and type (and history depth, see History),
// with the message bytes exactly as they travelled (no decoding, so no
// user types are needed).
// [Play] publishes a recording again with its original timing scaled by a
// rate, its original codec and type names (and, for protobuf, its
// descriptors in $describe), optional topic filtering and remapping, once
// or in a loop.
//
// # History
//
// A topic whose publishers keep history for late subscribers
// (colugo.WithHistory, advertised as colugo.TopicInfo.History) is marked
// on its channels: metadata [MetaHistory] ("colugo.history") holds the
// greatest depth its publishers offered so far, in decimal; channels of
// other topics do not have it. Channels cannot change once written, so a
// depth that grows during a recording starts a new channel of the topic.
// When a topic's first publisher offers history, the Recorder's
// subscription asks for that much, so the recording starts with what the
// publishers kept from before it started (a map, a robot description
// published once). [Play] publishes a marked topic with colugo.WithHistory
// of the greatest depth among its channels, so subscribers that join the
// replay and ask for history (colugo.WithLastValue) get the latched values
// as from the original publishers, for as long as Play runs.
//
// # How colugo maps to MCAP
//
//	colugo codec   MCAP message encoding   MCAP schema
//	json           json (well known)       encoding "jsonschema", name = type name, data "{}" (accepts any JSON)
//	protobuf       protobuf (well known)   encoding "protobuf", name = full message name, data = the
//	                                       FileDescriptorSet the publishers advertise in $describe
//	                                       (colugo.TopicInfo.Schema); else the one of the type if it
//	                                       is linked into the recording program; else empty
//	raw            raw (not a well-known   none (schema id 0)
//	               encoding; MCAP allows
//	               any string)
//	other          the codec name          none
//
// Every channel also carries metadata "colugo.codec" and "colugo.type", which
// playback prefers over the message encoding and schema name. Log time is
// the time the recorder's node received the message; publish time is the
// publisher's send time from the message header (the publisher's clock).
// Per-channel sequence numbers count the messages written on that channel.
// A seed publisher's messages (a seed publisher of a recorded topic, or
// any with [WithSeed]) are its frames' bytes, with codec raw and no type:
// the seed's wire names neither, nor a send time (publish time is the
// receive time) or sequence numbers (no gaps are counted); the sender is
// "seed:<its node uuid>".
// At the end of a recording a metadata record "colugo.recording" holds,
// per topic: "received", "dropped" (by the recording subscription: the
// writer fell behind by more than the queues hold, see [WithQueueBudget])
// and "decode_errors" as the recording node's
// [colugo.Node.Stats] counted them; "gaps", the sequence numbers missing per
// publisher (messages lost before they reached the recorder or dropped by
// it); "publishers"; "history", the greatest depth its publishers
// offered (0: none); and per publishing node id
// "sender.<id>.messages", "first_seq", "last_seq" and "gaps".
//
// Files are chunked (zstd by default), with CRCs, message and chunk
// indexes and a summary (schemas, channels, statistics, metadata index),
// and open in other MCAP tools. This package writes and reads the format
// itself, with no MCAP library linked (the mcap Go module links test
// libraries into programs); its tests read what it writes with that module. Reading is defensive: a truncated
// or corrupt file gives an error wrapping [ErrCorrupt], never a panic, and
// never costs more memory than it holds, up to a limit: a record or
// decompressed chunk larger than [DefaultMaxRecordSize] (72 MiB, see
// [WithMaxRecordSize]) is refused before anything is allocated for it, and
// lengths are never trusted beyond the bytes that follow. [Open] refuses a
// path that is not a regular file (a FIFO would block the open).
package record
