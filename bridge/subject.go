package bridge

import (
	"errors"
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
// one or more (any depth), every other segment itself. A name without "*"
// or "**" segments is literal. (colugo.SubscribePattern, coming in the
// library, may widen this; match is the one place that decides.)

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

func matchSegs(p, n []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "**":
			// one or more segments, then the rest of the pattern
			for k := 1; k <= len(n); k++ {
				if matchSegs(p[1:], n[k:]) {
					return true
				}
			}
			return false
		case "*":
			if len(n) == 0 {
				return false
			}
		default:
			if len(n) == 0 || n[0] != p[0] {
				return false
			}
		}
		p, n = p[1:], n[1:]
	}
	return len(n) == 0
}

// patternSubject returns the NATS subscription subject for a pattern (with
// its prefix already joined): "*" segments become NATS '*' tokens, and
// a "**" becomes '>' and ends the subject, so that the subscription
// receives a superset of the pattern's names, which match then filters.
func patternSubject(root, kind, pattern string) string {
	b := make([]byte, 0, len(root)+len(kind)+2+len(pattern)+8)
	b = append(b, root...)
	b = append(b, '.')
	b = append(b, kind...)
	for _, seg := range strings.Split(pattern, "/") {
		b = append(b, '.')
		switch seg {
		case "*":
			b = append(b, '*')
		case "**":
			return string(append(b, '>'))
		default:
			b = encodeSegment(b, seg)
		}
	}
	return string(b)
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
