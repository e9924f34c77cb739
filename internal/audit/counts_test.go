package audit

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// blockEntries returns n entries with every counted dimension varying,
// one of them with a time nanoseconds cannot hold at index bad (-1: none).
func blockEntries(n, bad int) []*Entry {
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	out := make([]*Entry, n)
	for i := range out {
		e := &Entry{Kind: []string{KindRequestAdmitted, KindRequestCompleted, KindRequestDenied}[i%3], Time: t0.Add(time.Duration(i*7919%n) * time.Second),
			Principal: &identity.Principal{Subject: fmt.Sprintf("u%d", i%5)}, Route: []string{"chat", "embed"}[i%2], Model: "m", Outcome: []string{"", OutcomeOK}[i%2], Status: i % 3 * 100}
		if i%3 == 2 {
			e.Decision = &Decision{Action: "deny", Rule: fmt.Sprintf("r%d", i%4)}
		}
		if i == bad {
			e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		out[i] = e
	}
	return out
}

// TestCountBlockEncoding: a block's encoding depends only on its entries
// (built at once or extended batch by batch through its encoding), parses
// back to the same bytes, and every truncation or extension of it is
// refused; Append stops at an entry it cannot hold and at the chunk's end.
func TestCountBlockEncoding(t *testing.T) {
	defer func(c int64) { CountChunk = c }(CountChunk)
	CountChunk = 64
	for _, tc := range []struct {
		name    string
		n, bad  int
		want    int64
		batches []int
	}{
		{"whole chunk", 64, -1, 64, []int{64}},
		{"in batches", 64, -1, 64, []int{1, 20, 3, 40}},
		{"partial chunk", 30, -1, 30, []int{7, 23}},
		{"beyond the chunk", 70, -1, 64, []int{70}},
		{"unrepresentable time", 64, 17, 17, []int{10, 54}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := blockEntries(tc.n, tc.bad)
			once := NewCountBlock(128)
			for i, e := range es {
				once.Append(128+int64(i), e)
			}
			if once.Len() != tc.want {
				t.Fatalf("Len = %d, want %d", once.Len(), tc.want)
			}
			want := once.AppendBinary(nil)
			var data []byte
			seq := 0
			for _, k := range tc.batches {
				b := NewCountBlock(128)
				if data != nil {
					var err error
					if b, err = ParseCountBlock(128, data); err != nil {
						t.Fatal(err)
					}
				}
				for _, e := range es[seq : seq+k] {
					b.Append(128+int64(seq), e)
					seq++
				}
				data = b.AppendBinary(nil)
			}
			if !bytes.Equal(data, want) {
				t.Fatalf("batched encoding differs from the encoding at once")
			}
			b, err := ParseCountBlock(128, want)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.AppendBinary(nil); !bytes.Equal(got, want) {
				t.Fatal("parse and encode do not round-trip")
			}
			for i := range len(want) {
				if _, err := ParseCountBlock(128, want[:i]); err == nil {
					t.Fatalf("a block cut to %d of %d bytes parsed", i, len(want))
				}
			}
			// Strict: whatever parses after a byte is mangled encodes
			// back to the same bytes.
			for i := range len(want) {
				m := bytes.Clone(want)
				m[i] ^= 0xff
				if b, err := ParseCountBlock(128, m); err == nil && !bytes.Equal(b.AppendBinary(nil), m) {
					t.Fatalf("byte %d mangled: the block parsed and encodes differently", i)
				}
			}
			if _, err := ParseCountBlock(128, append(bytes.Clone(want), 0)); err == nil {
				t.Fatal("a block with a trailing byte parsed")
			}
			if _, err := ParseCountBlock(100, want); err == nil {
				t.Fatal("a block at an unaligned start parsed")
			}
		})
	}
}

// TestCountBlockCount: counting from a block gives what counting the
// entries one by one gives, for every grouping, kind filter and window.
func TestCountBlockCount(t *testing.T) {
	defer func(c int64) { CountChunk = c }(CountChunk)
	CountChunk = 64
	es := blockEntries(64, -1)
	b := NewCountBlock(0)
	for i, e := range es {
		b.Append(int64(i), e)
	}
	data := b.AppendBinary(nil)
	t0 := es[0].Time.Truncate(time.Hour)
	var bys [][]string
	for _, a := range AggregateDimensions {
		bys = append(bys, []string{a})
		for _, c := range AggregateDimensions {
			bys = append(bys, []string{a, c})
		}
	}
	bys = append(bys, nil, AggregateDimensions)
	for _, by := range bys {
		for _, kind := range []string{"", KindRequestDenied, "no.such.kind"} {
			for _, w := range [][2]time.Time{{}, {t0.Add(10 * time.Second), t0.Add(40 * time.Second)}, {t0.Add(time.Minute), time.Time{}}} {
				q := AggregateQuery{By: by, Kind: kind, From: w[0], To: w[1]}
				for _, r := range [][2]int64{{0, 64}, {5, 33}} {
					got := map[Group]int64{}
					if err := b.count(r[0], r[1], q, got); err != nil {
						t.Fatal(err)
					}
					// The same from the encoding, decoded as needed.
					v, err := viewCountBlock(0, data)
					if err != nil {
						t.Fatal(err)
					}
					fromView := map[Group]int64{}
					if err := v.count(r[0], r[1], q, fromView); err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(fromView) != fmt.Sprint(got) {
						t.Fatalf("%+v %v: counts from the encoding %v, from the block %v", q, r, fromView, got)
					}
					want := map[Group]int64{}
					for _, e := range es[r[0]:r[1]] {
						if (!q.From.IsZero() && e.Time.Before(q.From)) || (!q.To.IsZero() && !e.Time.Before(q.To)) || (kind != "" && e.Kind != kind) {
							continue
						}
						a := aggOf(e)
						want[groupOf(&a, by)]++
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("%+v %v: block counts %v, entries %v", q, r, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkCountBlocks counts 1M entries (the mix of BenchmarkAggregate
// in internal/store/sqlite) from their encoded count blocks, as a cold
// Aggregate does after reading them: each op decodes the blocks' needed
// columns and counts every entry. ns/op is the CPU cost of the block part
// of a 1M-entry count (single goroutine; Aggregate spreads blocks over
// GOMAXPROCS workers).
func BenchmarkCountBlocks(b *testing.B) {
	const n = 1 << 20
	t0 := time.Now()
	var blocks [][]byte
	var cb *CountBlock
	kinds := []string{KindRequestAdmitted, KindRequestCompleted, KindRequestDenied}
	for i := range n {
		if i%int(CountChunk) == 0 {
			if cb != nil {
				blocks = append(blocks, cb.AppendBinary(nil))
			}
			cb = NewCountBlock(int64(i))
		}
		e := &Entry{Kind: kinds[i%3], Time: t0.Add(time.Duration(i) * time.Microsecond),
			Principal: &identity.Principal{Subject: fmt.Sprintf("user-%d", i%97)},
			Route:     []string{"chat", "embeddings", "fine-tune", "admin"}[i%4], Model: []string{"gpt-4o", "llama-3-70b", "mistral-7b"}[i%3]}
		switch e.Kind {
		case KindRequestCompleted:
			e.Outcome, e.Status = []string{OutcomeOK, OutcomeOK, OutcomeOK, OutcomeUpstreamError, OutcomeTruncated}[i%5], 200
		case KindRequestDenied:
			e.Decision = &Decision{Action: "deny", Rule: fmt.Sprintf("rule-%d", i%5)}
		default:
			e.Decision = &Decision{Action: "allow", Rule: "chat-default"}
		}
		cb.Append(int64(i), e)
	}
	blocks = append(blocks, cb.AppendBinary(nil))
	for _, tc := range []struct {
		name string
		q    AggregateQuery
	}{
		{"by-kind-outcome", AggregateQuery{By: []string{ByKind, ByOutcome}}},
		{"by-principal-route", AggregateQuery{By: []string{ByPrincipal, ByRoute}}},
		{"window/by-principal-model", AggregateQuery{From: t0.Add(n / 3 * time.Microsecond), To: t0.Add(2 * n / 3 * time.Microsecond), By: []string{ByPrincipal, ByModel}}},
		{"completed/by-outcome-status-route", AggregateQuery{Kind: KindRequestCompleted, By: []string{ByOutcome, ByStatus, ByRoute}}},
		{"by-category-decision-rule-principal", AggregateQuery{By: []string{ByCategory, ByDecision, ByRule, ByPrincipal}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				out := map[Group]int64{}
				for i, data := range blocks {
					start := int64(i) * CountChunk
					v, err := viewCountBlock(start, data)
					if err != nil {
						b.Fatal(err)
					}
					if err := v.count(start, start+v.Len(), tc.q, out); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
