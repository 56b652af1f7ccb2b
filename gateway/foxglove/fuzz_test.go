package foxglove

import "testing"

// FuzzDecodeOp checks that no client frame panics the op decoder and that
// what it returns stays within its bounds.
func FuzzDecodeOp(f *testing.F) {
	for _, s := range []string{`{"op":"subscribe","subscriptions":[{"id":1,"channelId":2}]}`,
		`{"op":"unsubscribe","subscriptionIds":[1]}`, `{"op":"advertise","channels":[{"id":1,"topic":"t","encoding":"json","schemaName":"x"}]}`,
		`{"op":`, `{}`, `[]`, "\x01\x01\x00\x00\x00abc", "\x02\x01\x00\x00\x00\x02\x00\x00\x00\x04\x00\x00\x00jsonxx", "\x02\xff"} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	f.Fuzz(func(t *testing.T, text bool, data []byte) {
		o, err := decodeOp(text, data)
		if err != nil {
			if o != nil {
				t.Fatal("op and error")
			}
			return
		}
		if len(o.Subscriptions) > maxOpItems || len(o.SubscriptionIDs) > maxOpItems || len(o.Channels) > maxOpItems || len(o.ChannelIDs) > maxOpItems {
			t.Fatal("op past its bounds")
		}
		if !text && len(o.Payload)+len(o.Encoding) > len(data) {
			t.Fatal("binary op longer than its frame")
		}
	})
}
