// Package mdns is a LAN [discovery.Discovery] on mDNS/DNS-SD (RFC 6762,
// 6763), built on github.com/libp2p/zeroconf/v2 v2.2.0; no zeroconf type
// appears in its API.
//
// # What is announced
//
// One DNS-SD instance per node, of type _colugo-go._tcp in local.:
//
//   - the type is not _colugo._tcp, the type of the Python colugo (the
//     seed) that colugo-go rebuilds: seed nodes resolve every instance of
//     their type one at a time and wait 1 s for each one they cannot
//     read, so every colugo-go node on the LAN delayed their discovery by
//     a second, and a name with '_' could kill their browser thread. On a
//     type of its own colugo-go is invisible to them (measured by
//     integration's TestSeedDoNoHarm). colugo-go releases that announced
//     _colugo._tcp and those that announce _colugo-go._tcp do not find
//     each other over mDNS;
//   - instance name: the node name (dots, backslashes, '_' and control
//     characters replaced by '-', cut to fit one 63-byte label) + "-" + the
//     node ID (16 hex digits for Node IDs; 8 hex digits of a hash for other
//     IDs), for example "camera-3f9c0a1b2c3d4e5f";
//   - the ID suffix is always there, not only "on collision":
//     zeroconf v2.2.0 cannot detect a collision. It probes without
//     listening for answers and ignores other nodes' probes, so two nodes
//     called "camera" would both keep the name, and its browsers would
//     report only the one heard first. Browsing for the name before
//     registering would still let two nodes that start together take the
//     same name. An ID that is always appended makes names unique by
//     construction; peers recover the node name by removing the suffix
//     (the Node reads the full name from $describe anyway);
//   - SRV: the router port, on a host name of its own, "colugo-<id>.local."
//     (nodes sharing a machine, or cloned machines sharing a hostname, must
//     not share address records);
//   - A: the IPv4 addresses of the chosen interfaces, and nothing else (no
//     link-local IPv6, which cannot be dialled without a zone);
//   - TXT: v=1, id=<node id>, pub=<pub port>, cat=<catalog hash>: at most
//     about 160 bytes whatever the number of topics; peers re-read the
//     catalog over the transport when cat changes.
//
// Registration uses zeroconf's RegisterProxy with explicit interfaces and
// addresses. Close sends goodbyes (TTL 0).
//
// # How peers are found
//
// zeroconf v2.2.0's Browse reports an instance only the first time a
// session sees it: never a change, a removal or a death. So:
//
//   - browsing runs in rounds: every refresh interval ([WithRefreshInterval],
//     10 s) a fresh Browse session sends one query, every peer answers, and
//     each answer refreshes that peer (or reports a change as Updated). The
//     session ends after 1 s, before zeroconf's own second query (4 s
//     after the first), so a round costs one query;
//   - a passive socket (it never sends) reads every mDNS packet, and peers
//     come from it alone: the instances a response carries
//     (announcements, and answers to any node's query) refresh or add
//     peers, in the order the packets came, goodbyes included (Browse's
//     own results are drained and dropped). A live PTR, SRV or TXT of a
//     known peer without its SRV and address in the same packet (avahi
//     answers that way when it multicast them less than a second before)
//     refreshes it too. A node that starts between
//     rounds is reported when its announcement arrives. The socket also
//     watches for what Browse drops: probes of a registering node, which
//     trigger a round at once (so Joined comes in a few hundred
//     milliseconds rather than after the first announcement, about 1 s),
//     goodbyes, and TXT changes made in place by other mDNS stacks;
//   - the passive socket reads a packet that miekg/dns rejects again
//     without the records whose data does not parse ([Stats]
//     SkippedRecords). python-zeroconf 0.47 (Debian 12) adds an NSEC record
//     with a malformed type bitmap to every answer, so Browse drops all its
//     answers; read this way they keep python-published peers from
//     expiring like any other;
//   - a goodbye becomes Left after a 1 s grace, unless the same node is
//     seen again first: [Discovery.Update] re-registers (goodbye, then a
//     new registration, since SetText races and is invisible to Go
//     browsers), and peers then see one Updated instead of Left + Joined;
//   - a peer that answers no round for the expiry ([WithExpiry], 32 s) is
//     reported Left. A node that crashes sends no goodbye, so this is slow
//     on purpose: colugo Nodes detect a dead peer within seconds through
//     heartbeats on their connections and need mDNS only to find peers;
//   - the first look is the first round's session, the settle window:
//     1 s from its start (even when a triggered round ends the session
//     sooner). Once it is over, the passive socket has read every packet
//     that arrived in it and the Joined events those packets gave have
//     been sent on the event channel, [Discovery.Settled] is closed
//     ([discovery.Settler]; the Node waits for it in WaitDiscovered).
//
// Interoperability is tested in network namespaces with python3-zeroconf
// 0.47 and avahi 0.8: each lists our instance with its port and TXT, and
// our node finds, keeps and drops (on goodbye) the instances they publish.
//
// Records of other service types, the seed's _colugo._tcp included, are
// not colugo-go announcements: they are neither read as peers nor counted.
//
// Entries that are not usable colugo announcements (TXT without v=1 or
// without a valid id, bad ports, no IPv4 address) are ignored, logged at
// debug level and counted ([Discovery.Stats]); unknown TXT keys are
// ignored. The Peer reported has Router and Pub as "ipv4:port", with the
// announced address on one of our subnets when there is one.
//
// # Seed nodes
//
// [SeedDirectory] is the other side of the separate service type: for a
// node in seed compatibility mode it browses the seed's _colugo._tcp,
// reports the seed's publishers and reply servers as
// [discovery.SeedSocket]s, and announces seed-style records (one instance
// _<name>._<uuid> per seed-visible socket) for names that pass
// [CheckSeedName]. A Discovery never reads seed records, and a
// SeedDirectory never reads colugo-go's.
//
// # Traffic
//
// An idle node sends one query per refresh interval (IPv4 only, when a
// round's Browse session starts; the session ends before zeroconf's own
// second query), answers every query on the LAN, its own included, with
// one IPv4 and one IPv6 packet (zeroconf answers on both families and has
// no option against it), and announces itself only when it starts or its
// announcement changes. With the default 10 s that is 6 + 12N packets a
// minute per node for N nodes (measured with tcpdump for N = 3: 42, 24
// IPv4 + 18 IPv6; 84 while sessions stayed open for zeroconf's second
// query), independent of the number of topics.
//
// # Limits
//
// Interfaces and their addresses are read once, at Start. zeroconf logs a
// few errors through the standard library's global log package. Any host on
// the LAN can announce anything: a Peer found here is a hint, verified by
// the Node over the transport.
package mdns
