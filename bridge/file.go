package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// ParseConfig reads a Config from YAML (the yaml tags of Config's fields),
// strictly: an unknown key or a second document is an error wrapping
// ErrConfig. The result is not yet checked; New checks it. Durations are
// Go's ("500ms", "2s").
//
// The parser is go.yaml.in/yaml/v3, the YAML organization's maintained
// continuation of gopkg.in/yaml.v3 (archived), with no dependencies; only
// this package links it.
//
//	site: lab
//	nats:
//	  urls: [nats://hub.example:4222]
//	  creds_file: /etc/colugo/lab.creds
//	prefix: lab
//	export:
//	  topics:
//	    - {name: "robot/*/pose", max_rate: 10}
//	    - {name: robot/log, jetstream: {max_msgs: 100000, max_bytes: 67108864, max_age: 24h}}
//	  services:
//	    - {name: robot/status}
//	import:
//	  topics:
//	    - {name: cmd/**, prefix: control}
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)

	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return c, fmt.Errorf("%w: empty config", ErrConfig)
		}
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%w: more than one YAML document", ErrConfig)
	}
	return c, nil
}

// LoadConfig reads the file at path with ParseConfig.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data)
}
