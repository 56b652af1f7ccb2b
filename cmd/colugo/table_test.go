package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableColumns: every column starts at the same terminal column on
// every row, at least two spaces after the widest value before it, with
// wide (CJK) and combining characters in the cells; tabs, newlines and
// escape sequences in a cell are shown escaped and cannot split it.
func TestTableColumns(t *testing.T) {
	t.Parallel()
	var tb table
	tb.add("TOPIC", "HISTORY", "PUBLISHERS")
	tb.add("ロボット/地図", 1, "camera")
	tb.add("cafe\u0301/menu", "-", "x")
	tb.add("a\tb\nc\x1b[2J", "3 (1 of 2 publishers)", "left,right")
	tb.add("short", "-", "-")
	var buf bytes.Buffer
	if err := tb.write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines (a cell split a row):\n%s", len(lines), out)
	}
	if !strings.Contains(out, `a\tb\nc\x1b[2J`) {
		t.Fatalf("control characters not escaped:\n%q", out)
	}
	// Where each column starts on the header, in terminal columns.
	starts := columnStarts(lines[0])
	if len(starts) != 3 {
		t.Fatalf("header columns %v", starts)
	}
	for _, l := range lines[1:] {
		got := columnStarts(l)
		if len(got) != 3 || got[1] != starts[1] || got[2] != starts[2] {
			t.Errorf("row %q: columns start at %v, header at %v", l, got, starts)
		}
	}
	// Two spaces after the widest first cell (the escaped one).
	if want := cellWidth(escapeCell("a\tb\nc\x1b[2J")) + 2; starts[1] != want {
		t.Errorf("second column at %d, want %d", starts[1], want)
	}
}

// columnStarts returns the terminal columns where cells start: after two
// or more spaces (cells here hold no double space).
func columnStarts(line string) []int {
	starts := []int{0}
	col, spaces := 0, 0
	for _, r := range line {
		if r == ' ' {
			spaces++
		} else {
			if spaces >= 2 {
				starts = append(starts, col)
			}
			spaces = 0
		}
		col += cellWidth(string(r))
	}
	return starts
}

func TestCellWidth(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int{"abc": 3, "地図": 4, "e\u0301": 1, "ｱ": 1, "ＡＢ": 4, "🤖": 2, "": 0} {
		if got := cellWidth(s); got != want {
			t.Errorf("cellWidth(%q) = %d, want %d", s, got, want)
		}
	}
}
