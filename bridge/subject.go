package bridge

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// Kinds of subjects, the token after the root: what travels under it.
const (
	kindTopic   = "t" // published messages
	kindService = "s" // requests (queue group per service)
	kindInfo    = "i" // a service's codec, types and schemas, for importers
)

// maxName is colugo's bound on topic and service names, in bytes.
const maxName = 255

var errSubject = errors.New("bridge: subject is not a colugo name")

// keep reports whether b stands for itself in a subject token. Everything
// else is escaped, so that a token never holds what NATS forbids or reads
// specially ('.', '*', '>', white space, control bytes) nor anything that
// a NATS client or tool might (the rest of ASCII punctuation, non-ASCII).
func keep(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-+=,@:~", b) >= 0
}

const hexDigits = "0123456789abcdef"

// encodeSegment appends the subject token of one segment of a name (the
// text between two '/'): kept bytes as they are, '_' as "__", every other
// byte as '_' and two lowercase hex digits, and an empty segment as "_".
func encodeSegment(dst []byte, seg string) []byte {
	if seg == "" {
		return append(dst, '_')
	}
	for i := 0; i < len(seg); i++ {
		switch b := seg[i]; {
		case keep(b):
			dst = append(dst, b)
		case b == '_':
			dst = append(dst, '_', '_')
		default:
			dst = append(dst, '_', hexDigits[b>>4], hexDigits[b&15])
		}
	}
	return dst
}

// encodeName appends the tokens of name, joined by '.': each '/' of the
// name becomes a '.'.
func encodeName(dst []byte, name string) []byte {
	for i, seg := range strings.Split(name, "/") {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = encodeSegment(dst, seg)
	}
	return dst
}

// Subject returns the NATS subject of a colugo name (topic or service, as
// it appears on NATS: with its prefix) under root, for kind "t" (topics)
// or "s" (services): root.kind.token... with one token per '/'-separated
// segment of name. See the package documentation for the escaping.
func subject(root, kind, name string) string {
	b := make([]byte, 0, len(root)+len(kind)+2+len(name)+8)
	b = append(b, root...)
	b = append(b, '.')
	b = append(b, kind...)
	b = append(b, '.')
	return string(encodeName(b, name))
}

// unhex returns the value of a lowercase hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// decodeTokens returns the colugo name that the tokens (a subject without
// its root and kind, e.g. "robot.pose") stand for. It accepts only what
// encodeName produces (lowercase hex, no escaped byte that could stand for
// itself), so that a name has exactly one subject, and only valid colugo
// names (1 to 255 bytes of UTF-8 without NUL).
func decodeTokens(tokens string) (string, error) {
	if tokens == "" {
		return "", errSubject
	}
	out := make([]byte, 0, len(tokens))
	for i, tok := range strings.Split(tokens, ".") {
		if i > 0 {
			out = append(out, '/')
		}
		if tok == "_" {
			continue // an empty segment
		}
		if tok == "" {
			return "", errSubject
		}
		for j := 0; j < len(tok); j++ {
			b := tok[j]
			if keep(b) {
				out = append(out, b)
				continue
			}
			if b != '_' || j+1 >= len(tok) {
				return "", errSubject
			}
			if tok[j+1] == '_' {
				out = append(out, '_')
				j++
				continue
			}
			if j+2 >= len(tok) {
				return "", errSubject
			}
			hi, lo := unhex(tok[j+1]), unhex(tok[j+2])
			if hi < 0 || lo < 0 {
				return "", errSubject
			}
			v := byte(hi<<4 | lo)
			if keep(v) || v == '_' || v == '/' || v == 0 {
				return "", errSubject // not canonical ('/' separates tokens), or NUL
			}
			out = append(out, v)
			j += 2
		}
	}
	if len(out) == 0 || len(out) > maxName || !utf8.Valid(out) {
		return "", errSubject
	}
	return string(out), nil
}

// nameOf returns the colugo name of subject, which must be root.kind.
// followed by at least one token.
func nameOf(root, kind, subject string) (string, error) {
	head := root + "." + kind + "."
	if !strings.HasPrefix(subject, head) {
		return "", errSubject
	}
	return decodeTokens(subject[len(head):])
}

// Patterns. An export or import entry names topics or services with a
// pattern of '/'-separated segments: "*" matches exactly one segment, "**"
// zero or more (any depth), every other segment itself, as in
// colugo.Pattern (SubscribePattern, colugo echo): "robot/**" matches
// "robot" and "robot/a/b". A name without "*" or "**" segments is
// literal. On NATS a trailing "**" takes two subjects: "robot.>" (one
// token or more) and "robot" itself.

// isPattern reports whether p has a wildcard segment.
func isPattern(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "*" || seg == "**" {
			return true
		}
	}
	return false
}

// match reports whether name matches pattern.
func match(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

// covers reports whether every name that pattern b matches, pattern a
// matches too, or false when that takes more than maxCoverStates to
// decide. It walks the two patterns' subset automata side by side over
// the literal segments either holds and one segment neither does (every
// other behaves like it), looking for a name that b matches and a does
// not. (Matching b's segments as symbols is not enough: "*/*/*/**" covers
// "*/**/x/x", as both need three segments.) A glob's automaton can grow
// exponentially ("**/a/*/*/…/*"), hence the bound.
func covers(a, b string) bool {
	pa, pb := strings.Split(a, "/"), strings.Split(b, "/")
	var alphabet []string
	for _, seg := range append(slices.Clone(pa), pb...) {
		if seg != "*" && seg != "**" && !slices.Contains(alphabet, seg) {
			alphabet = append(alphabet, seg)
		}
	}
	alphabet = append(alphabet, "\x00") // no segment holds a NUL
	type state struct {
		a, b  string
		named bool // past a segment: the empty name is none
	}
	start := state{closure(pa, []int{0}), closure(pb, []int{0}), false}
	seen := map[state]bool{start: true}
	queue := []state{start}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if st.named && accepts(pb, st.b) && !accepts(pa, st.a) {
			return false
		}
		for _, seg := range alphabet {
			next := state{step(pa, st.a, seg), step(pb, st.b, seg), true}
			if next.b == "" || seen[next] {
				continue // b matches nothing from there
			}
			if len(seen) >= maxCoverStates {
				return false
			}
			seen[next] = true
			queue = append(queue, next)
		}
	}
	return true
}

// maxCoverStates bounds covers' work: a config's entries are checked
// pairwise when a bridge starts.
const maxCoverStates = 4096

// closure returns the automaton state of positions in p (sorted, each a
// byte: p has at most 2 × 128 segments… kept as a string to be a map
// key), with the positions past every zero-or-more "**" they stand
// before.
func closure(p []string, pos []int) string {
	in := make([]bool, len(p)+1)
	for _, i := range pos {
		for ; !in[i]; i++ {
			in[i] = true
			if i == len(p) || p[i] != "**" {
				break
			}
		}
	}
	var key []byte
	for i, ok := range in {
		if ok {
			key = binary.AppendUvarint(key, uint64(i))
		}
	}
	return string(key)
}

// positions decodes closure's state.
func positions(st string) []int {
	var out []int
	for b := []byte(st); len(b) > 0; {
		v, n := binary.Uvarint(b)
		out, b = append(out, int(v)), b[n:]
	}
	return out
}

// step returns the state after segment seg from state st of p.
func step(p []string, st string, seg string) string {
	var next []int
	for _, i := range positions(st) {
		switch {
		case i == len(p):
		case p[i] == "**":
			next = append(next, i) // takes seg and stays
		case p[i] == "*" || p[i] == seg:
			next = append(next, i+1)
		}
	}
	if next == nil {
		return ""
	}
	return closure(p, next)
}

// accepts reports whether state st of p has matched all of p.
func accepts(p []string, st string) bool { return slices.Contains(positions(st), len(p)) }

// matchSegs matches the segments n against the pattern segments p. It is
// glob matching ("**" as a glob's "*", "*" as its "?") with a single
// backtracking point, the last "**", which is enough for globs:
// O(len(p) × len(n)) whatever the pattern (trying every split at every
// "**" was exponential in their number: 4 of them against a hostile
// 100-segment name took 355 ms, 6 a minute). colugo.Pattern.Match is the
// same; FuzzMatch checks that they agree.
func matchSegs(p, n []string) bool {
	pi, ni := 0, 0
	star, mark := -1, 0 // the last "**", and the first segment of n it has not taken
	for ni < len(n) {
		switch {
		case pi < len(p) && p[pi] == "**":
			star, mark = pi, ni // taking nothing at first
			pi++
		case pi < len(p) && (p[pi] == "*" || p[pi] == n[ni]):
			pi, ni = pi+1, ni+1
		case star >= 0:
			mark++ // the last "**" takes one more segment
			pi, ni = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == "**" {
		pi++ // what is left of p matches nothing
	}
	return pi == len(p)
}

// patternSubjects returns the NATS subscription subjects for a pattern
// (with its prefix already joined), so that they receive a superset of
// the pattern's names, which match then filters: "*" segments become NATS
// '*' tokens, and the first "**" becomes '>' (one token or more) and ends
// the subject. When every segment from that "**" on is a "**", the names
// the "**"s take nothing from need a subject of their own: "robot/**"
// subscribes to "robot.>" and "robot". The first subject is the entry's
// main one (its JetStream stream is named after it).
func patternSubjects(root, kind, pattern string) []string {
	b := make([]byte, 0, len(root)+len(kind)+2+len(pattern)+8)
	b = append(b, root...)
	b = append(b, '.')
	b = append(b, kind...)
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		switch seg {
		case "*":
			b = append(b, '.', '*')
		case "**":
			subjects := []string{string(append(b, '.', '>'))}
			if i > 0 && !slices.ContainsFunc(segs[i:], func(s string) bool { return s != "**" }) {
				subjects = append(subjects, string(b))
			}
			return subjects
		default:
			b = append(b, '.')
			b = encodeSegment(b, seg)
		}
	}
	return []string{string(b)}
}

// entrySubjects returns the NATS subjects of an entry's pattern name
// under prefix (patternSubjects), less the prefix's own subject for a
// name of "**"s alone: no local name is empty.
func entrySubjects(root, kind, prefix, name string) []string {
	subjects := patternSubjects(root, kind, joinPrefix(prefix, name))
	if !slices.ContainsFunc(strings.Split(name, "/"), func(s string) bool { return s != "**" }) {
		subjects = subjects[:1]
	}
	return subjects
}

// joinPrefix returns the name on NATS of a local name under prefix.
func joinPrefix(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

// stripPrefix returns the local name of a name on NATS under prefix, and
// whether it was under it.
func stripPrefix(prefix, name string) (string, bool) {
	if prefix == "" {
		return name, true
	}
	rest, ok := strings.CutPrefix(name, prefix+"/")
	return rest, ok && rest != ""
}
