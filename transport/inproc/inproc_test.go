package inproc_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/colugo-go/colugo/transport"
	"github.com/colugo-go/colugo/transport/inproc"
	"github.com/colugo-go/colugo/transport/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	n := inproc.NewNetwork()
	transporttest.RunFactories(t, transporttest.Factories{
		New: func(testing.TB) transport.Transport { return n.New() },
		NewQueue: func(_ testing.TB, queueBytes int) transport.Transport {
			return n.New(inproc.WithQueueBytes(queueBytes))
		},
	})
}
