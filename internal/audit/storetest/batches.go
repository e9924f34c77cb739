package storetest

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// SignedBatches returns the batches of size entries (the last may be
// shorter) for records [0, n), each with its hashes and signed head, and
// a history checkpoint every 1000 entries as the Log's default does.
// The entries look like the gateway's completions (~450 bytes). The
// append benchmarks of the stores (BenchmarkStoreAppend,
// BenchmarkFrameLogAppend) write these same batches.
func SignedBatches(b testing.TB, signer note.Signer, size, n int) []audit.Batch {
	var hs []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hs[x]
		}
		return out, nil
	})
	var out []audit.Batch
	lastHistory := int64(0)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for from := 0; from < n; from += size {
		to := min(n, from+size)
		bt := audit.Batch{HashStart: tlog.StoredHashCount(int64(from))}
		for seq := int64(from); seq < int64(to); seq++ {
			e := &audit.Entry{
				V: 1, Kind: audit.KindRequestCompleted, ID: fmt.Sprintf("e%016x", seq), Time: t0.Add(time.Duration(seq) * time.Millisecond),
				RequestID: fmt.Sprintf("req-%d", seq),
				Principal: &identity.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: "user"},
				Route:     "chat", Method: "POST", Path: "/v1/chat/completions", Model: "llama-3",
				Params:   map[string]any{"temperature": 0.2, "n": seq},
				Decision: &audit.Decision{Action: "allow", Rule: "default", PolicyVersion: "abc"},
			}
			data, err := audit.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			e.Seq = seq
			add, err := tlog.StoredHashes(seq, data, reader)
			if err != nil {
				b.Fatal(err)
			}
			hs = append(hs, add...)
			bt.Records = append(bt.Records, audit.Record{Seq: seq, Data: data, Entry: e})
			bt.Hashes = append(bt.Hashes, add...)
		}
		root, err := tlog.TreeHash(int64(to), reader)
		if err != nil {
			b.Fatal(err)
		}
		c, err := audit.SignCheckpoint(signer, int64(to), root, t0.Add(time.Duration(to)*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		bt.Head = &c
		if int64(to)-lastHistory >= 1000 {
			bt.HeadHistory = true
			lastHistory = int64(to)
		}
		out = append(out, bt)
	}
	return out
}
