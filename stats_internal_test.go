package colugo

import "testing"

func TestNoteSeqGaps(t *testing.T) {
	c := &counters{lastSeq: make(map[string]*senderSeq)}
	for _, m := range []struct {
		sender string
		seq    uint64
	}{{"a", 1}, {"a", 2}, {"b", 1}, {"a", 5}, {"b", 2}, {"b", 4}, {"a", 6}, {"a", 0}, {"c", 10}} {
		c.noteSeq(m.sender, m.seq)
	}
	if g := c.gaps.Load(); g != 3 { // a: 3,4; b: 3. A new sender starting at 10 is not a gap.
		t.Fatalf("gaps = %d, want 3", g)
	}
}
