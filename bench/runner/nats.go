package runner

import (
	"context"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsURL is the NATS JetStream server of the export stage:
// $WARDENBENCH_NATS, default nats://127.0.0.1:4222.
func natsURL() string {
	if u := os.Getenv("WARDENBENCH_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// natsReachable checks that url answers as a JetStream server.
func natsReachable(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// deleteNATSStream removes a stream an export stage created (best effort:
// the run's report does not depend on it).
func deleteNATSStream(url, name string) {
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, name)
}
