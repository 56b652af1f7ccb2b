module github.com/colugo-go/colugo

go 1.25.0

require (
	github.com/coder/websocket v1.8.14
	github.com/foxglove/mcap/go/mcap v1.7.0
	github.com/go-zeromq/zmq4 v0.17.0
	github.com/klauspost/compress v1.16.7
	github.com/libp2p/zeroconf/v2 v2.2.0
	github.com/miekg/dns v1.1.43
	github.com/pierrec/lz4/v4 v4.1.21
	github.com/segmentio/encoding v0.5.4
	go.opentelemetry.io/otel v1.45.0
	go.opentelemetry.io/otel/metric v1.45.0
	go.opentelemetry.io/otel/sdk v1.45.0
	go.opentelemetry.io/otel/sdk/metric v1.45.0
	go.opentelemetry.io/otel/trace v1.45.0
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.44.0
	golang.org/x/net v0.46.0
	golang.org/x/sync v0.19.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/go-zeromq/goczmq/v4 v4.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/segmentio/asm v1.1.3 // indirect
	github.com/stretchr/testify v1.11.1 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.31.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
