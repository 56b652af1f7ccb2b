package colugo

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// refValid is the pattern syntax read straight from the documentation.
func refValid(pattern string) bool {
	if pattern == "" || len(pattern) > 255 || !utf8.ValidString(pattern) || strings.ContainsRune(pattern, 0) {
		return false
	}
	for _, seg := range strings.Split(pattern, "/") {
		if strings.Contains(seg, "*") && seg != "*" && seg != "**" {
			return false
		}
	}
	return true
}

// refMatch is the reference matcher: the definition, recursively, with
// memoisation so that the fuzzer's many-"**" patterns stay cheap.
func refMatch(pattern, topic string) bool {
	p, t := strings.Split(pattern, "/"), strings.Split(topic, "/")
	memo := map[[2]int]bool{}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(p):
			r = j == len(t)
		case p[i] == "**":
			for jj := j; jj <= len(t) && !r; jj++ {
				r = m(i+1, jj)
			}
		case j == len(t):
			r = false
		case p[i] == "*":
			r = m(i+1, j+1)
		default:
			r = p[i] == t[j] && m(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return m(0, 0)
}

var patternCases = []struct {
	pattern, topic string
	want           bool
}{
	{"robot/pose", "robot/pose", true},
	{"robot/pose", "robot/pose2", false},
	{"robot/*/pose", "robot/a/pose", true},
	{"robot/*/pose", "robot/pose", false},
	{"robot/*/pose", "robot/a/b/pose", false},
	{"robot/*/pose", "robot//pose", true},
	{"robot/*", "robot", false},
	{"robot/*", "robot/", true},
	{"robot/**", "robot", true},
	{"robot/**", "robot/a/b/c", true},
	{"robot/**", "robots/a", false},
	{"**", "a", true},
	{"**", "a/b/c", true},
	{"**/pose", "pose", true},
	{"**/pose", "a/b/pose", true},
	{"**/pose", "a/b/pose/x", false},
	{"a/**/b", "a/b", true},
	{"a/**/b", "a/x/y/b", true},
	{"a/**/b", "a/x/y/c", false},
	{"a/**/b/**/c", "a/b/b/c/c", true},
	{"a/**/**/b", "a/b", true},
	{"*/*", "a/b", true},
	{"*/*", "a", false},
	{"/a", "/a", true},
	{"/a", "a", false},
	{"*", "a", true},
	{"*", "a/b", false},
	{"**/*/x", "x", false},
	{"**/*/x", "q/x", true},
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	for _, c := range patternCases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", c.pattern, err)
		}
		if got := p.Match(c.topic); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pattern, c.topic, got, c.want)
		}
		if got := refMatch(c.pattern, c.topic); got != c.want {
			t.Errorf("reference: %q on %q = %v, want %v", c.pattern, c.topic, got, c.want)
		}
		if p.String() != c.pattern {
			t.Errorf("String() = %q, want %q", p.String(), c.pattern)
		}
	}
	if (Pattern{}).Match("a") {
		t.Error("the zero Pattern matched")
	}
}

func TestPatternInvalid(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a**b", "a/**b", "a/b**", "***", "pose*", "*pose", "a/*b/c", "a\x00b", "\xff", strings.Repeat("a", 256)} {
		if _, err := ParsePattern(bad); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ParsePattern(%q) = %v, want ErrInvalidOption", bad, err)
		}
	}
}

func FuzzPattern(f *testing.F) {
	for _, c := range patternCases {
		f.Add(c.pattern, c.topic)
	}
	f.Add("a**b", "a")
	f.Add("**/**/**/a/**/a/**/a", "a/a/a/a/a/a/a/a/a/a/b")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		p, err := ParsePattern(pattern)
		if valid := refValid(pattern); (err == nil) != valid {
			t.Fatalf("ParsePattern(%q) = %v, reference says valid=%v", pattern, err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("ParsePattern(%q): %v does not match ErrInvalidOption", pattern, err)
			}
			return
		}
		if got, want := p.Match(topic), refMatch(pattern, topic); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference %v", pattern, topic, got, want)
		}
	})
}
