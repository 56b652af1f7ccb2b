module github.com/colugo-go/colugo

go 1.25.0

require (
	github.com/go-zeromq/zmq4 v0.17.0
	github.com/libp2p/zeroconf/v2 v2.2.0
	github.com/miekg/dns v1.1.43
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.0.0-20210423184538-5f58ad60dda6
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/go-zeromq/goczmq/v4 v4.2.2 // indirect
	golang.org/x/sync v0.19.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.15.0 // indirect
)
