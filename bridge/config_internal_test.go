package bridge

import (
	"log/slog"
	"testing"
	"time"
)

// TestConfigDefaults: the defaults the Config doc comments state.
func TestConfigDefaults(t *testing.T) {
	c, err := Config{Site: "a", NATS: NATS{URLs: []string{"nats://127.0.0.1:4222"}},
		Export: Lists{Topics: []Topic{{Name: "log", JetStream: &JetStream{MaxMsgs: 10}}}}}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		what      string
		got, want any
	}{
		{"Root", c.Root, "colugo"},
		{"MaxImportTopics", c.MaxImportTopics, 1024},
		{"MaxExportTopics", c.MaxExportTopics, 1024},
		{"Logger (silent)", c.Logger.Handler(), slog.DiscardHandler},
		{"QueueBytes", c.QueueBytes, 4 << 20},
		{"QueueBudget", c.QueueBudget, 64 << 20},
		{"MaxInflight", c.MaxInflight, 256},
		{"NATS.ReconnectBuffer", c.NATS.ReconnectBuffer, 8 << 20},
		{"NATS.ReconnectWait", c.NATS.ReconnectWait, time.Second},
		{"NATS.PingInterval", c.NATS.PingInterval, 5 * time.Second},
		{"NATS.WriteTimeout", c.NATS.WriteTimeout, 10 * time.Second},
		{"JetStream.Spool", c.Export.Topics[0].JetStream.Spool, 8 << 20},
	} {
		if d.got != d.want {
			t.Errorf("%s: %v, want %v", d.what, d.got, d.want)
		}
	}
}
