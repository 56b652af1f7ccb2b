// Package bridge joins colugo networks (sites: one host or one LAN each)
// through NATS: a Bridge is a colugo node on its site and a NATS client,
// and forwards the topics and services its Config lists, and nothing
// else, both ways. It is a module of its own so that NATS stays out of the
// library's dependencies.
//
//	node, _ := colugo.NewNode("bridge")
//	b, err := bridge.New(node, bridge.Config{
//		Site: "lab",
//		NATS: bridge.NATS{URLs: []string{"nats://127.0.0.1:4222"}},
//		Export: bridge.Lists{Topics: []bridge.Topic{{Name: "robot/*/pose", MaxRate: 10}}},
//		Import: bridge.Lists{Services: []bridge.Service{{Name: "planner/plan"}}},
//	})
//	go b.Run(ctx)
//	defer node.Close()
//	defer b.Close()
//
// ParseConfig and LoadConfig read a Config from YAML; see ParseConfig for
// an example file.
//
// # Topics and services
//
// An exported topic is subscribed on the site (as bytes, whatever its
// codec) and each message is published on NATS with its codec, type,
// sender, sequence number, send time and metadata (trace context included)
// in NATS headers. An imported topic is subscribed on NATS and each message
// is published on the site by the bridge's node with its original codec and
// type (codec.Passthrough), so that subscribers decode it as if its
// publisher were local.
//
// An exported service, while some node of the site serves it, gets a NATS
// queue subscription (queue group named after its subject: the sites that
// export one service share its requests); each request is sent to a local
// server with the remaining deadline, and the reply, or the error's code
// and message, goes back in the NATS reply. An imported service is served
// by the bridge's node (so it answers $describe with it) once an exporter
// on NATS has described it (codec, types, schemas); each request goes to
// NATS with the caller's remaining deadline. A remote handler's error
// reaches the caller as a *colugo.RemoteError with its code and message.
// No exporter on NATS ("no responders"), or a remote site where nobody
// serves it any more, gives colugo.CodeUnavailable: a handler cannot send
// CodeNotServed, which colugo keeps for itself.
//
// # Names and subjects
//
// A colugo name n under a namespace prefix p (Config.Prefix, or an entry's
// own: added on export, stripped on import) is the name p/n on NATS, and
// travels on the subject
//
//	root.kind.token.token...
//
// where root is Config.Root ("colugo"), kind is "t" for topics, "s" for
// service requests and "i" for service descriptions, and each
// '/'-separated segment of the name is one token: ASCII letters, digits
// and "-+=,@:~" stand for themselves, '_' is written "__", every other byte
// (including '.', '*', '>', space, control bytes and each byte of non-ASCII
// UTF-8) is '_' followed by its two lowercase hex digits, and an empty
// segment is the token "_". So "robot/front camera/image_raw" is
// colugo.t.robot.front_20camera.image__raw. The mapping is reversible and
// every subject it makes is a literal NATS subject (no wildcard, no empty
// token); a subject that is not exactly what it makes is refused.
//
// Entries name topics and services with patterns of segments: "*" matches
// one segment, "**" zero or more (as in colugo.SubscribePattern: robot/**
// takes robot itself, on NATS subjects robot.> and robot); other segments
// match themselves. Export
// patterns are matched against the topics and services the site's nodes
// announce; import patterns become NATS wildcard subscriptions. Of the
// entries of one list that match a name, the first listed takes it (of
// import entries, the first of those with the same prefix: entries of two
// prefixes publish it under two local names), so a narrower entry
// with settings of its own (JetStream, max_rate) goes before a wider one;
// New refuses one that an earlier entry covers, which would take nothing.
//
// # Loops and isolation
//
// Nothing crosses unless an entry lists it. Every message and request a
// bridge puts on NATS carries its site (Colugo-Origin) and its id
// (Colugo-Bridge), and what it injects into its site carries the metadata
// key "colugo.bridge.origin". A bridge never exports what did not
// originate on its site (a message from its own node or carrying that
// key), never imports what came from its own site or bridge, and refuses a
// service both exported and imported by itself. So two sites (or several
// bridges of one site) that export and import the same topic deliver each
// message once.
//
// # Intermittent links
//
// The bridge reconnects for ever. While NATS is unreachable the site runs
// on unaffected: what goes to NATS is held up to NATS.ReconnectBuffer bytes,
// then dropped and counted (Stats: Drops.Link); what waits for publishing
// meanwhile waits in the exported topics' queues, QueueBytes each and
// QueueBudget together (their oldest dropped past them, Stats: Queue),
// however many topics a pattern export matches; imported services fail at
// their callers' deadlines, and Stats says the link is down. When the link
// returns, subscriptions are restored and traffic resumes by itself.
//
// A link can also go silent without failing (a radio out of range,
// packets dropped on the way): no error comes, writes block once the
// socket buffers are full. The bridge finds it within about three
// NATS.PingInterval (two pings unanswered; 10–15 s by default) while
// little is sent, or within NATS.WriteTimeout (10 s) of a write that stays
// blocked, then reconnects as for a failed link (to another of its URLs,
// if it has several). Stats and Status answer at once meanwhile.
//
// # Store-and-forward
//
// A topic entry with JetStream set goes through a JetStream stream (the
// NATS server must have JetStream enabled). An exporting bridge creates
// the stream over the entry's subjects, named after them ("colugo_",
// the subject's letters and digits, a hash), with the entry's bounds (the
// oldest messages are discarded past them) and replicas; of a stream that
// exists it sets only the bounds, the subjects and, when the entry gives
// them, the replicas, keeping the rest its operator chose. It gives each
// message the
// id Nats-Msg-Id = sender-seq-topic hash, so that the stream keeps one
// copy of a message sent twice. An importing bridge reads each stream
// that holds some of its entry's subjects (the export's of the same
// pattern, of a wider one, or the exports of narrower ones, several sites'
// perhaps, 256 at most; it looks for new ones every 2 s) through a durable consumer
// named after its site, the stream and, unless it is the stream of its
// own pattern, its own subjects (the bridges of one site share it),
// acking each message once published on the site, so
// that what was published while the site was offline, its link cut or its
// bridge down, arrives when it is back, in stream order: a bridge that
// stops gives back (Nak) what it was sent and had not handed on, and a
// bridge that starts where its predecessor left messages unacked (a
// crash: JetStream sends them again after 5 s) holds newer ones until
// those come, 6 s at most; a durable deleted under a running bridge is
// made again from the message after the last the site had. Redeliveries of messages the
// site had lately (by exporting bridge, sender, subject and seq) are
// dropped (Stats: Duplicate). On a topic's first message the importer
// waits, 5 s at most, until its node has looked at the whole site
// (colugo's Node.WaitDiscovered: a bridge just started knows none of it)
// and its publisher reaches the site's subscribers of the topic, so that
// a backlog does not go before they are connected; its publisher waits
// (colugo.WithBackPressure, 2 s at most) for room for a site subscriber
// with the Block policy before the message is acked, so such a subscriber
// gets a backlog whole however slowly it reads; and a message is acked
// once the node has written it to such subscribers' connections
// (colugo.Publisher.Flush, 4 s at most), so that a bridge that crashes
// (killed, not stopped) loses none of what they were to get: JetStream
// sends what was not acked again to the site's next bridge, a few
// messages perhaps twice. Subscribers of the other policies may lose what
// its send queues held for them.
// The exporter publishes these messages with acks, on a NATS connection
// of its own that has no reconnect buffer, and keeps each in the topic's
// spool (JetStream.Spool, 8 MiB by default: full, it holds the topic
// back while it can send, a burst then waiting in the topic's queue and
// its publishers' send queues, as the bridge's subscription of the topic
// waits for room, colugo.Block, 2 s; and it drops its oldest not sent
// while it cannot, Stats: Link) until the stream has acked it: it sends nothing before it
// has made the stream, and keeps them while its link
// is down or silent (what sat in the socket buffers of a failed link is
// sent again) or after the stream was deleted (the
// exporter makes it again, and the importer then reads it from its
// start). On a failure it waits for every answer still due before it
// sends again, from the first message not acked, so the stream stores
// each message once and in order. A stream can still take one message
// and lose the next: a change of stream leader in a JetStream cluster
// loses what the old leader had not answered. The exporter sends those
// again as soon as acks of later messages come before theirs, and each
// message carries the seq of its sender's message before it
// (Colugo-Prev-Seq), so the importer hands them on in the order they were
// sent, per topic and sender, holding later ones up to 7 s for an earlier
// one (TestJetStreamLeaderChange: three leader changes during 3000
// messages, every one delivered once and in order). Stats.Spooled counts what the spools hold;
// a stopping bridge sends them for 2 s at most while its link is up.
//
// # Introspection
//
// A bridge's node carries a status document in its $describe, named
// StatusName: Status as JSON (site, bridge id, link state and server, the
// Config's entries, what crosses now, Stats), computed each time the node
// is described; moving counters do not make peers describe it again. The
// publishers of imported topics, the servers of imported services and the
// subscriptions of exported topics carry a colugo.Relay (Via "nats",
// Remote the other site when known, Name the subject), so that tools tell
// them from the site's own. colugo nodes and colugo doctor show both.
package bridge
