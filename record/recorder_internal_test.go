package record

import "testing"

// TestNoteSeq: gaps are counted per sender; a sequence that goes back is a
// new start, not a gap.
func TestNoteSeq(t *testing.T) {
	t.Parallel()
	r := &Recorder{}
	st := &topicState{senders: map[string]*senderState{}}
	for _, m := range []struct {
		sender string
		seq    uint64
	}{{"a", 1}, {"b", 7}, {"a", 2}, {"a", 5}, {"b", 8}, {"b", 10}, {"a", 1}, {"a", 2}} {
		r.noteSeq(st, m.sender, m.seq)
	}
	a, b := st.senders["a"], st.senders["b"]
	if st.gaps != 3 || a.gaps != 2 || b.gaps != 1 || a.messages != 5 || b.first != 7 || b.last != 10 || a.last != 2 {
		t.Fatalf("gaps %d, a %+v, b %+v", st.gaps, *a, *b)
	}
}
