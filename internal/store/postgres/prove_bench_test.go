package postgres

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkProve measures proof latency against a PostgreSQL store whose
// tree has 1M records: the stored hashes of 1M synthetic leaves are loaded
// with COPY (the proofs read only the hashes table), then each iteration
// builds and checks an inclusion proof of a random record, or a
// consistency proof between a random older size and 1M.
//
//	WARDEN_TEST_POSTGRES=... go test -run '^$' -bench BenchmarkProve ./internal/store/postgres/
func BenchmarkProve(b *testing.B) {
	const n = 1 << 20
	ctx := context.Background()
	schema := newSchema(b)
	st := openStore(b, schema)

	hashes := make([]tlog.Hash, 0, tlog.StoredHashCount(n))
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	var buf [8]byte
	for i := int64(0); i < n; i++ {
		binary.BigEndian.PutUint64(buf[:], uint64(i))
		leaf := tlog.RecordHash(buf[:])
		hs, err := tlog.StoredHashesForRecordHash(i, leaf, mem)
		if err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	c := rawConn(b, schema)
	if _, err := c.CopyFrom(ctx, pgx.Identifier{"hashes"}, []string{"idx", "hash"}, pgx.CopyFromSlice(len(hashes), func(i int) ([]any, error) {
		return []any{int64(i), hashes[i][:]}, nil
	})); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, "ANALYZE hashes"); err != nil {
		b.Fatal(err)
	}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	root, err := tlog.TreeHash(n, mem)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))

	b.Run("inclusion/1M", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			seq := rng.Int64N(n)
			p, err := tlog.ProveRecord(n, seq, reader)
			if err != nil {
				b.Fatal(err)
			}
			binary.BigEndian.PutUint64(buf[:], uint64(seq))
			if err := tlog.CheckRecord(p, n, root, seq, tlog.RecordHash(buf[:])); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency/1M", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			old := 1 + rng.Int64N(n-1)
			p, err := tlog.ProveTree(n, old, reader)
			if err != nil {
				b.Fatal(err)
			}
			oh, err := tlog.TreeHash(old, reader)
			if err != nil {
				b.Fatal(err)
			}
			if err := tlog.CheckTree(p, n, root, old, oh); err != nil {
				b.Fatal(err)
			}
		}
	})
}
