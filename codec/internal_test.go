package codec

import (
	"strings"
	"testing"
)

// TestDeeper checks fastDepth's boundary: deeper counts the nesting of
// arrays and objects, not brackets inside strings.
func TestDeeper(t *testing.T) {
	t.Parallel()
	nest := func(n int) string { return strings.Repeat(`[{"a":`, n/2) + strings.Repeat(`[`, n%2) + "1" }
	for _, tt := range []struct {
		data string
		want bool
	}{
		{``, false},
		{`{"a":[1,2,{"b":[]}]}`, false},
		{nest(fastDepth), false},
		{nest(fastDepth + 1), true},
		{strings.Repeat(`[]`, 1000), false}, // many brackets, shallow
		{`"` + strings.Repeat(`[`, 100) + `"`, false},
		{`["\"` + strings.Repeat(`[`, 100) + `"]`, false},
		{`["\\"` + strings.Repeat(`[`, 100), true}, // the string ended before the brackets
	} {
		if got := deeper([]byte(tt.data), fastDepth); got != tt.want {
			t.Errorf("deeper(%.50q) = %v, want %v", tt.data, got, tt.want)
		}
	}
}
