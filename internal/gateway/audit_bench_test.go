package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
)

// BenchmarkAuditedRequest measures a small chat completion through the
// whole request path with the SQLite audit log (admission made durable
// before forwarding, completion appended in the background), clients and
// upstream in the process. Besides allocs/op it reports cpu-µs/op, the
// process CPU time per request (getrusage: gateway, audit writer and
// indexer, clients and upstream alike), steadier than ns/op on a shared
// machine. audit=off is the same stack without the audit log: the
// difference is the audit path's cost per request. bench/enc-compare.sh
// runs it against a base revision (decision 037); compare the two, not
// the absolute figures.
func BenchmarkAuditedRequest(b *testing.B) {
	defer func(l *slog.Logger) { slog.SetDefault(l) }(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the stack logs at info
	b.Run("audit=on", func(b *testing.B) { benchRequests(b, newStack(b)) })
	b.Run("audit=off", func(b *testing.B) {
		benchRequests(b, newStackWith(b, func(_ *config.Config, o *Options) { o.Audit = nil }))
	})
}

func benchRequests(b *testing.B, s *stack) {
	tok := s.token(b, "alice")
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":64,"temperature":0.2,"stream":false}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := s.gw + "/v1/chat/completions"
	b.ReportAllocs()
	b.SetParallelism(16) // 32 clients on 2 cores: group commits of many entries
	cpu0 := processCPU()
	b.ResetTimer()
	postParallel(b, client, url, body, tok)
	// The completions of the last requests are part of their cost.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.g.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
