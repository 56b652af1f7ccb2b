package mdns

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/colugo-go/colugo/discovery"
)

const (
	// serviceType is not the Python colugo's _colugo._tcp: seed nodes
	// resolve every instance of their type, serially, and wait 1 s for each
	// one that is not theirs, and a name they cannot parse kills their
	// browser thread. A type of our own keeps colugo-go records out of their
	// browsers entirely (issue 17, measured by TestSeedDoNoHarm).
	serviceType   = "_colugo-go._tcp"
	domain        = "local."
	serviceFQDN   = serviceType + "." + domain // "_colugo-go._tcp.local."
	txtVersion    = "1"
	maxLabel      = 63 // DNS label limit, in bytes
	shortIDLen    = 8
	maxPlainID    = 16
	maxIDLen      = 64 // keeps TXT small whatever the ID
	maxCatalogLen = 64 // a hash, not the catalog itself
	errPrefix     = "colugo/discovery/mdns:"
)

// errMalformed marks an entry ignored for its content.
var errMalformed = errors.New(errPrefix + " malformed entry")

// validID reports whether id can be announced: 1 to 64 bytes of letters,
// digits, '-', '_' and '.'.
func validID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%s invalid peer ID %q: must be 1 to %d bytes", errPrefix, id, maxIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%s invalid peer ID %q: only letters, digits, '-', '_' and '.' are allowed", errPrefix, id)
		}
	}
	return nil
}

func idHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// shortID is the suffix that makes instance names unique: the ID itself
// when it is at most 16 lowercase letters and digits (node IDs are 16 hex
// digits, so people can match it), else 8 hex digits of its hash.
func shortID(id string) string {
	if len(id) <= maxPlainID && isLowerAlnum(id) {
		return id
	}
	return idHash(id)[:shortIDLen]
}

// hostLabel is the SRV target's label, unique per node: two nodes on one
// machine (or on cloned machines with one hostname) must not share address
// records, or other stacks merge their addresses.
func hostLabel(id string) string {
	if len(id) <= 40 && isLowerAlnum(id) {
		return "colugo-" + id
	}
	return "colugo-" + idHash(id)[:24]
}

func isLowerAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// instanceName is name + "-" + shortID(id), with the name cleaned (no dots,
// which would split the label, no backslashes or control characters, no
// '_', which browsers that split names on it, like the Python colugo's,
// misread) and
// cut at a rune boundary so the whole fits one 63-byte label. The ID suffix
// keeps two nodes with the same name apart: zeroconf has no conflict
// resolution, and its browsers report only the first of two equal names.
func instanceName(name, id string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '.' || r == '\\' || r == '_' || r < 0x20 || r == 0x7f || r == utf8.RuneError:
			r = '-'
		}
		b.WriteRune(r)
	}
	clean := b.String()
	suffix := shortID(id)
	limit := maxLabel - 1 - len(suffix)
	for len(clean) > limit {
		_, size := utf8.DecodeLastRuneInString(clean)
		clean = clean[:len(clean)-size]
	}
	if clean == "" {
		clean = "colugo"
	}
	return clean + "-" + suffix
}

// nameFromInstance recovers the node name from an instance name as a
// browser reports it (escaped presentation form, e.g. `my\ node`): it
// unescapes it and strips the ID suffix. A long name comes back cut; the
// Node reads the full one from $describe.
func nameFromInstance(instance, id string) string {
	s := unescape(instance)
	return strings.TrimSuffix(s, "-"+shortID(id))
}

// unescape undoes DNS presentation escapes: `\X` and `\DDD`.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if n, err := strconv.Atoi(s[i+1 : i+4]); err == nil && n < 256 {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// announcement is what one registration publishes.
type announcement struct {
	instance string
	host     string // a bare label: zeroconf appends ".local."
	port     int
	txt      []string
}

// portOf returns the port of a "host:port" address.
func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return n, nil
}

// announce builds the announcement of self, or an error naming the bad
// field. TXT holds v=1, id=, pub= (when self.Pub is set) and cat= (when
// self.Catalog is set): at most about 160 bytes whatever the topics.
func announce(self discovery.Peer) (announcement, error) {
	if err := validID(self.ID); err != nil {
		return announcement{}, err
	}
	port, err := portOf(self.Router)
	if err != nil {
		return announcement{}, fmt.Errorf("%s invalid Router %q: %v", errPrefix, self.Router, err)
	}
	txt := []string{"v=" + txtVersion, "id=" + self.ID}
	if self.Pub != "" {
		pub, err := portOf(self.Pub)
		if err != nil {
			return announcement{}, fmt.Errorf("%s invalid Pub %q: %v", errPrefix, self.Pub, err)
		}
		txt = append(txt, "pub="+strconv.Itoa(pub))
	}
	if len(self.Catalog) > maxCatalogLen {
		return announcement{}, fmt.Errorf("%s Catalog is %d bytes, more than %d: announce a hash", errPrefix, len(self.Catalog), maxCatalogLen)
	}
	if self.Catalog != "" {
		txt = append(txt, "cat="+self.Catalog)
	}
	return announcement{
		instance: instanceName(self.Name, self.ID),
		// zeroconf appends the domain to a host name that does not end
		// with "local." once its dots are trimmed, so "x.local." would
		// become "x.local.local.": pass the bare label.
		host: hostLabel(self.ID),
		port: port,
		txt:  txt,
	}, nil
}

// txtFields are the TXT keys colugo reads; unknown keys are ignored so
// that later versions can add some.
type txtFields struct {
	version, id, pub, cat string
	hasPub                bool
}

// parseTXT reads TXT strings per RFC 6763 §6: keys are case-insensitive,
// the first occurrence of a key wins, strings without '=' are boolean
// attributes (ignored here).
func parseTXT(txt []string) txtFields {
	var f txtFields
	seen := map[string]bool{}
	for _, s := range txt {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(k)
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case "v":
			f.version = v
		case "id":
			f.id = v
		case "pub":
			f.pub, f.hasPub = v, true
		case "cat":
			f.cat = v
		}
	}
	return f
}

// peerFrom turns a browse result into a Peer, or reports why it is not a
// usable colugo announcement (wrapping errMalformed).
func peerFrom(instance string, port int, txt []string, v4 []net.IP, local []*net.IPNet) (discovery.Peer, error) {
	f := parseTXT(txt)
	switch {
	case f.version != txtVersion:
		return discovery.Peer{}, fmt.Errorf("%w: version %q, want %q", errMalformed, f.version, txtVersion)
	case validID(f.id) != nil:
		return discovery.Peer{}, fmt.Errorf("%w: bad id %q", errMalformed, f.id)
	case port < 1 || port > 65535:
		return discovery.Peer{}, fmt.Errorf("%w: bad port %d", errMalformed, port)
	case len(f.cat) > maxCatalogLen:
		return discovery.Peer{}, fmt.Errorf("%w: cat is %d bytes", errMalformed, len(f.cat))
	}
	ip := pickIPv4(v4, local)
	if ip == nil {
		return discovery.Peer{}, fmt.Errorf("%w: no IPv4 address", errMalformed)
	}
	p := discovery.Peer{
		ID:      f.id,
		Name:    nameFromInstance(instance, f.id),
		Router:  net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		Catalog: f.cat,
	}
	if f.hasPub {
		n, err := strconv.Atoi(f.pub)
		if err != nil || n < 1 || n > 65535 {
			return discovery.Peer{}, fmt.Errorf("%w: bad pub %q", errMalformed, f.pub)
		}
		p.Pub = net.JoinHostPort(ip.String(), f.pub)
	}
	return p, nil
}

// pickIPv4 chooses the address to dial among those announced: the first
// one on a subnet of ours (a peer with several interfaces announces all of
// them), else the first one.
func pickIPv4(addrs []net.IP, local []*net.IPNet) net.IP {
	var first net.IP
	for _, a := range addrs {
		a4 := a.To4()
		if a4 == nil || a4.IsUnspecified() || a4.IsMulticast() {
			continue
		}
		if first == nil {
			first = a4
		}
		for _, n := range local {
			if n.Contains(a4) {
				return a4
			}
		}
	}
	return first
}
