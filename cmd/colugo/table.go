package main

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// table prints rows of cells in columns, each padded to its widest value
// as a terminal shows it, two spaces apart. text/tabwriter counts runes,
// so a wide (CJK, emoji) or zero-width (combining) character in a name
// would shift the next column, and a tab or newline inside a name (topic
// names may hold any UTF-8 but NUL) would split a cell or a row: names
// come from peers, so every cell is escaped and measured here.
type table struct {
	rows [][]string
}

// add appends a row; values are formatted with %v.
func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = escapeCell(fmt.Sprint(c))
	}
	t.rows = append(t.rows, row)
}

// write prints the rows; the last cell of a row is not padded.
func (t *table) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], cellWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-cellWidth(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeCell shows control and other invisible characters of s as Go
// escapes (\t, \n, \x1b, \u200b), so a cell stays on its line and a name
// cannot move the cursor or hide characters.
func escapeCell(s string) string {
	clean := true
	for _, r := range s {
		if !cellPrintable(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if cellPrintable(r) {
			b.WriteRune(r)
			continue
		}
		q := fmt.Sprintf("%+q", string(r)) // ASCII-only quoting: "\t", "\x1b", "\u200b", "\ufffd"
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func cellPrintable(r rune) bool {
	return r != utf8.RuneError && (unicode.IsPrint(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r))
}

// cellWidth is how many terminal columns s takes: combining marks none,
// East Asian wide and fullwidth characters (and emoji) two, others one
// (Markus Kuhn's wcwidth ranges, without x/text, which the CLI must not
// link).
func cellWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		case wide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

func wide(r rune) bool {
	return r >= 0x1100 && (r <= 0x115f || r == 0x2329 || r == 0x232a ||
		(r >= 0x2e80 && r <= 0xa4cf && r != 0x303f) ||
		(r >= 0xac00 && r <= 0xd7a3) ||
		(r >= 0xf900 && r <= 0xfaff) ||
		(r >= 0xfe10 && r <= 0xfe19) ||
		(r >= 0xfe30 && r <= 0xfe6f) ||
		(r >= 0xff00 && r <= 0xff60) ||
		(r >= 0xffe0 && r <= 0xffe6) ||
		(r >= 0x1f300 && r <= 0x1f64f) ||
		(r >= 0x1f900 && r <= 0x1f9ff) ||
		(r >= 0x20000 && r <= 0x2fffd) ||
		(r >= 0x30000 && r <= 0x3fffd))
}
