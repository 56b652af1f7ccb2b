package bridge_test

import (
	"os"
	"strings"
	"testing"

	"github.com/colugo-go/colugo/bridge"
)

// The configurations the README shows parse.
func TestREADMEConfigs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, part := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		cfg, err := bridge.ParseConfig([]byte(block))
		if err != nil {
			t.Errorf("README config:\n%s\n%v", block, err)
			continue
		}
		if cfg.Site == "" || len(cfg.NATS.URLs) == 0 {
			t.Errorf("README config parsed without site or URLs: %+v", cfg)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d YAML configs in README.md, want the 2 of Fleets and sites", n)
	}
}
