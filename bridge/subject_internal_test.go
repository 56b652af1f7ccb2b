package bridge

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/colugo-go/colugo"
)

// validName reports whether n is a colugo topic or service name.
func validName(n string) bool {
	return n != "" && len(n) <= maxName && utf8.ValidString(n) && !strings.Contains(n, "\x00")
}

func TestSubjectExamples(t *testing.T) {
	for name, want := range map[string]string{
		"robot/pose":                   "colugo.t.robot.pose",
		"robot/front camera/image_raw": "colugo.t.robot.front_20camera.image__raw",
		"a.b/*/>":                      "colugo.t.a_2eb._2a._3e",
		"/x//":                         "colugo.t._.x._._",
		"_":                            "colugo.t.__",
		"é":                            "colugo.t._c3_a9",
		"tab\tand\nnewline":            "colugo.t.tab_09and_0anewline",
		"$sys/x-y+z=1,2@h:p~q":         "colugo.t._24sys.x-y+z=1,2@h:p~q",
	} {
		got := subject("colugo", kindTopic, name)
		if got != want {
			t.Errorf("subject(%q) = %q, want %q", name, got, want)
		}
		if !server.IsValidLiteralSubject(got) {
			t.Errorf("subject(%q) = %q: not a literal NATS subject", name, got)
		}
		if back, err := nameOf("colugo", kindTopic, got); err != nil || back != name {
			t.Errorf("nameOf(%q) = %q, %v; want %q", got, back, err, name)
		}
	}
}

func TestSubjectRefused(t *testing.T) {
	for _, s := range []string{
		"colugo.t.",                            // no token
		"colugo.t.a..b",                        // empty token
		"colugo.t._",                           // a name of one empty segment: ""
		"colugo.t.a_",                          // dangling escape
		"colugo.t.a_4",                         // short escape
		"colugo.t.a_4G",                        // not hex
		"colugo.t.a_2E",                        // uppercase hex: not canonical
		"colugo.t._61",                         // 'a' escaped: not canonical
		"colugo.t._5f",                         // '_' escaped as hex: not canonical ("__")
		"colugo.t._00",                         // NUL
		"colugo.t._ff",                         // not UTF-8
		"colugo.t.a*b",                         // '*' unescaped
		"colugo.t.a b",                         // space
		"colugo.s.a",                           // another kind
		"other.t.a",                            // another root
		"colugo.t." + strings.Repeat("a", 256), // too long a name
	} {
		if n, err := nameOf("colugo", kindTopic, s); err == nil {
			t.Errorf("nameOf(%q) = %q, want an error", s, n)
		}
	}
}

// FuzzSubject checks that every name has a literal NATS subject that
// decodes back to it, and that every token string that decodes is the
// one encoding of its name.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"robot/pose", "a.b/*/>", "/", "_x_", "é/ü", "a\x01b", "$x", "__", "_2e", "_2f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validName(s) {
			subj := subject("colugo", kindService, s)
			if !server.IsValidLiteralSubject(subj) {
				t.Fatalf("subject(%q) = %q: not a literal NATS subject", s, subj)
			}
			back, err := nameOf("colugo", kindService, subj)
			if err != nil || back != s {
				t.Fatalf("nameOf(subject(%q)) = %q, %v", s, back, err)
			}
		}
		if n, err := decodeTokens(s); err == nil {
			if !validName(n) {
				t.Fatalf("decodeTokens(%q) = %q: not a valid name", s, n)
			}
			if enc := string(encodeName(nil, n)); enc != s {
				t.Fatalf("decodeTokens(%q) = %q, which encodes to %q", s, n, enc)
			}
		}
	})
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, n string
		want bool
	}{
		{"robot/pose", "robot/pose", true},
		{"robot/pose", "robot/pose/x", false},
		{"robot/*/pose", "robot/r1/pose", true},
		{"robot/*/pose", "robot/pose", false},
		{"robot/*/pose", "robot/a/b/pose", false},
		{"robot/**", "robot/a", true},
		{"robot/**", "robot/a/b/c", true},
		{"robot/**", "robot", true},
		{"robot/**", "robots", false},
		{"**/pose", "a/b/pose", true},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/zz", false},
		{"a/**/**", "a", true},
		{"**/pose", "pose", true},
		{"a/**/z", "a/b/c/z", true},
		{"*", "a", true},
		{"*", "a/b", false},
	} {
		if got := match(c.p, c.n); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.p, c.n, got)
		}
	}
	for p, want := range map[string][]string{
		"robot/pose":   {"colugo.t.robot.pose"},
		"robot/*/pose": {"colugo.t.robot.*.pose"},
		"robot/**":     {"colugo.t.robot.>", "colugo.t.robot"},
		"robot/*/**":   {"colugo.t.robot.*.>", "colugo.t.robot.*"},
		"a/**/**":      {"colugo.t.a.>", "colugo.t.a"},
		"a/**/z":       {"colugo.t.a.>"},
		"**":           {"colugo.t.>"},
		"**/z":         {"colugo.t.>"},
		"a.b/*":        {"colugo.t.a_2eb.*"},
	} {
		got := patternSubjects("colugo", kindTopic, p)
		if !slices.Equal(got, want) {
			t.Errorf("patternSubjects(%q) = %q, want %q", p, got, want)
		}
		for _, s := range got {
			if !server.IsValidSubject(s) {
				t.Errorf("patternSubjects(%q): %q is not a valid subject", p, s)
			}
		}
	}
	// A name of "**"s alone under a prefix: the prefix's own subject
	// would be an empty local name.
	for _, c := range []struct {
		prefix, name string
		want         []string
	}{
		{"site", "**", []string{"colugo.t.site.>"}},
		{"site", "**/**", []string{"colugo.t.site.>"}},
		{"site", "robot/**", []string{"colugo.t.site.robot.>", "colugo.t.site.robot"}},
		{"", "robot/**", []string{"colugo.t.robot.>", "colugo.t.robot"}},
	} {
		if got := entrySubjects("colugo", kindTopic, c.prefix, c.name); !slices.Equal(got, c.want) {
			t.Errorf("entrySubjects(%q, %q) = %q, want %q", c.prefix, c.name, got, c.want)
		}
	}
}

// matchRef is match as it was: every split tried at every "**"
// (exponential in their number), the reference for FuzzMatch.
func matchRef(p, n []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "**":
			for k := 0; k <= len(n); k++ {
				if matchRef(p[1:], n[k:]) {
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

// FuzzMatch: the linear match agrees with the reference on patterns and
// names of up to 8 segments, and with the library's patterns (what
// SubscribePattern and colugo echo match) on every pattern and name both
// take.
func FuzzMatch(f *testing.F) {
	for _, c := range [][2]string{{"robot/**", "robot/a/b"}, {"**/a/**/b", "a/a/b/b"}, {"*/**/*", "a/b"}, {"a/**/**", "a/b"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, p, n string) {
		ps, ns := strings.Split(p, "/"), strings.Split(n, "/")
		if len(ps) > 8 || len(ns) > 8 {
			return
		}
		got := match(p, n)
		if want := matchRef(ps, ns); got != want {
			t.Fatalf("match(%q, %q) = %v, want %v", p, n, got, want)
		}
		if lib, err := colugo.ParsePattern(p); err == nil && validName(n) {
			if want := lib.Match(n); got != want {
				t.Fatalf("match(%q, %q) = %v, colugo.Pattern.Match %v", p, n, got, want)
			}
		}
	})
}

// TestMatchLinear: many "**" against a long name that almost matches
// cost a few microseconds, not the minutes of trying every split.
func TestMatchLinear(t *testing.T) {
	name := strings.Repeat("a/", 120) + "c"
	p := strings.Repeat("**/a/", 20) + "**/b"
	allocs := testing.AllocsPerRun(10, func() {
		if match(p, name) {
			t.Fatal("matched")
		}
	})
	if allocs > 2 { // the two splits
		t.Errorf("%v allocations", allocs)
	}
}

// TestCovers checks covers against every name of up to 7 segments over
// x, y and z for every pair of patterns of up to 4 segments over x, y, *
// and **: a covers b exactly when every name b matches, a matches.
func TestCovers(t *testing.T) {
	var pats, names []string
	var grow func(prefix []string, alphabet []string, max int, out *[]string)
	grow = func(prefix []string, alphabet []string, max int, out *[]string) {
		if len(prefix) > 0 {
			*out = append(*out, strings.Join(prefix, "/"))
		}
		if len(prefix) == max {
			return
		}
		for _, a := range alphabet {
			grow(append(prefix, a), alphabet, max, out)
		}
	}
	grow(nil, []string{"x", "y", "*", "**"}, 4, &pats)
	grow(nil, []string{"x", "y", "z"}, 7, &names)
	matches := make([][]bool, len(pats))
	for i, p := range pats {
		matches[i] = make([]bool, len(names))
		for j, n := range names {
			matches[i][j] = match(p, n)
		}
	}
	for i, a := range pats {
		for k, b := range pats {
			want := true
			for j := range names {
				if matches[k][j] && !matches[i][j] {
					want = false
					break
				}
			}
			if got := covers(a, b); got != want {
				t.Errorf("covers(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}
