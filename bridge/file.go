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

// LoadConfig reads the file at path with ParseConfig. A path that is not
// a regular file of at most 1 MiB is an error wrapping ErrConfig.
func LoadConfig(path string) (Config, error) {
	if err := checkFile("config", path); err != nil {
		return Config{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return Config{}, err
	}
	if len(data) > maxFileBytes { // grew since checkFile looked
		return Config{}, fmt.Errorf("%w: config %q: more than %d bytes", ErrConfig, path, maxFileBytes)
	}
	return ParseConfig(data)
}

// maxFileBytes bounds the files a bridge reads: its config, and the
// credentials, keys and certificates that the config names.
const maxFileBytes = 1 << 20

// checkFile refuses a path that is not a regular file of at most
// maxFileBytes: reading a FIFO waits for a writer (and nats.go reads
// credentials again at every connect), a device such as /dev/zero fills
// memory. A missing file is os.Stat's error, as is.
func checkFile(what, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s %q: not a regular file (%s)", ErrConfig, what, path, fi.Mode().Type())
	}
	if fi.Size() > maxFileBytes {
		return fmt.Errorf("%w: %s %q: %d bytes, more than %d", ErrConfig, what, path, fi.Size(), maxFileBytes)
	}
	return nil
}
