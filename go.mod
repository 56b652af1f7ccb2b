module github.com/colugo-go/colugo

go 1.25.0

require (
	github.com/go-zeromq/goczmq/v4 v4.2.2 // indirect
	github.com/go-zeromq/zmq4 v0.17.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sync v0.19.0 // indirect
	golang.org/x/text v0.15.0 // indirect
	google.golang.org/protobuf v1.36.12
)
