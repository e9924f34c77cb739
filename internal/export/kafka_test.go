package export

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func kafkaCluster(t *testing.T, topic string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// topicUIDs consumes the topic from the start and returns the ocsf-uid
// headers per partition, in offset order.
func topicUIDs(t *testing.T, c *kfake.Cluster, topic string, want int) map[int32][]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]string{}
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "ocsf-uid" {
					out[r.Partition] = append(out[r.Partition], string(h.Value))
					n++
				}
			}
		})
	}
	return out
}

func onePartition(t *testing.T, parts map[int32][]string) []string {
	t.Helper()
	if len(parts) != 1 {
		t.Fatalf("events spread over %d partitions; one key must keep them in one", len(parts))
	}
	for _, u := range parts {
		return u
	}
	return nil
}

func TestKafkaDelivers(t *testing.T) {
	c := kafkaCluster(t, "warden-ocsf")
	l := newMemLog(t)
	l.fill(t, 500, 100)
	s, err := NewKafkaSink(KafkaConfig{Brokers: c.ListenAddrs(), Topic: "warden-ocsf"}, "warden-audit")
	if err != nil {
		t.Fatal(err)
	}
	h := startExporter(t, l, target(t.TempDir(), "kafka", s))
	waitFor(t, "delivery", func() bool { return h.x.Status()[0].Delivered == 505 })
	checkUIDs(t, l, onePartition(t, topicUIDs(t, c, "warden-ocsf", 505)), false)
}

// TestKafkaOutage: the broker refuses produce requests (connections cut)
// for a while; the idempotent producer retries, and every event is in the
// topic once, in order.
func TestKafkaOutage(t *testing.T) {
	c := kafkaCluster(t, "warden-ocsf")
	var down atomic.Bool
	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if down.Load() {
			c.KeepControl()
			refused.Add(1)
			return nil, errors.New("broker down"), true
		}
		c.KeepControl()
		return nil, nil, false
	})
	l := newMemLog(t)
	s, err := NewKafkaSink(KafkaConfig{Brokers: c.ListenAddrs(), Topic: "warden-ocsf", Compression: "none"}, "warden-audit")
	if err != nil {
		t.Fatal(err)
	}
	h := startExporter(t, l, target(t.TempDir(), "kafka", s))
	stopLoad := l.steadyLoad(t) // a steady load while the sink is down
	waitFor(t, "a first delivery", func() bool { return h.x.Status()[0].Delivered > 100 })
	down.Store(true)
	time.Sleep(2 * time.Second)
	down.Store(false)
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	l.checkpoint(t)
	l.mu.Lock()
	total := len(l.items)
	l.mu.Unlock()
	waitFor(t, "catch-up", func() bool { return h.x.Status()[0].Delivered == int64(total) })
	if refused.Load() == 0 {
		t.Fatal("no produce request was refused")
	}
	checkUIDs(t, l, onePartition(t, topicUIDs(t, c, "warden-ocsf", total)), false)
}

func TestKafkaConfigErrors(t *testing.T) {
	for _, c := range []KafkaConfig{{}, {Brokers: []string{"x:1"}}, {Brokers: []string{"x:1"}, Topic: "t", Compression: "brotli"},
		{Brokers: []string{"x:1"}, Topic: "t", SASLMechanism: "gssapi"}, {Brokers: []string{"x:1"}, Topic: "t", CAFile: "ca"}} {
		if _, err := NewKafkaSink(c, "o"); err == nil {
			t.Errorf("%+v accepted", c)
		} else if strings.Contains(err.Error(), "password") {
			t.Errorf("error mentions a password: %v", err)
		}
	}
}
