// Package mdns is a LAN [discovery.Discovery] on mDNS/DNS-SD (RFC 6762,
// 6763), built on github.com/libp2p/zeroconf/v2 v2.2.0; no zeroconf type
// appears in its API.
//
// # What is announced
//
// One DNS-SD instance per node, of type _colugo._tcp in local.:
//
//   - instance name: the node name (dots, backslashes and control
//     characters replaced by '-', cut to fit one 63-byte label) + "-" + the
//     node ID (16 hex digits for Node IDs; 8 hex digits of a hash for other
//     IDs), so two nodes called "camera" are two instances (zeroconf
//     has no conflict resolution, and its browsers show only the first of
//     two equal names);
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
//     newest session stays open between rounds, so the announcement of a
//     node that starts is reported when it arrives;
//   - a passive socket (it never sends) watches the mDNS traffic for what
//     Browse drops: probes of a registering node, which trigger a round at
//     once (so Joined comes in a few hundred milliseconds rather than after
//     the first announcement, about 1 s), goodbyes, and TXT changes made
//     in place by other mDNS stacks;
//   - a goodbye becomes Left after a 1 s grace, unless the same node is
//     seen again first: [Discovery.Update] re-registers (goodbye, then a
//     new registration, since SetText races and is invisible to Go
//     browsers), and peers then see one Updated instead of Left + Joined;
//   - a peer that answers no round for the expiry ([WithExpiry], 32 s) is
//     reported Left. A node that crashes sends no goodbye, so this is slow
//     on purpose: colugo Nodes detect a dead peer within seconds through
//     heartbeats on their connections and need mDNS only to find peers.
//
// Entries that are not usable colugo announcements (TXT without v=1 or
// without a valid id, bad ports, no IPv4 address) are ignored, logged at
// debug level and counted ([Discovery.Stats]); unknown TXT keys are
// ignored. The Peer reported has Router and Pub as "ipv4:port", with the
// announced address on one of our subnets when there is one.
//
// # Traffic
//
// An idle node sends two queries per refresh interval (IPv4 only: one when
// a round's Browse session starts, one from zeroconf's own schedule 4 s
// later), answers every query on the LAN, its own included, with one IPv4
// and one IPv6 packet (zeroconf answers on both families), and announces
// itself only when it starts or its announcement changes. With the default
// 10 s that is 12 + 24N packets a minute per node for N nodes (measured: 84
// for N = 3, 48 IPv4 + 36 IPv6), independent of the number of topics.
//
// # Limits
//
// Interfaces and their addresses are read once, at Start. zeroconf logs a
// few errors through the standard library's global log package. Any host on
// the LAN can announce anything: a Peer found here is a hint, verified by
// the Node over the transport.
package mdns
