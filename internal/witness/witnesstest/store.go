package witnesstest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/witness"
)

// RunStore is the contract suite for witness.Store. open must return a
// new, empty store; it may register cleanup with t.
func RunStore(t *testing.T, open func(t *testing.T) witness.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st witness.Store)
	}{
		{"Empty", storeEmpty},
		{"PutAndRead", storePutRead},
		{"FirstKept", storeFirstKept},
		{"Paging", storePaging},
		{"Concurrent", storeConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func cosig(size int64, w string, sec int) witness.Cosignature {
	return witness.Cosignature{Size: size, Witness: w, KeyHash: uint32(len(w)) * 0x01010101,
		Time: t0.Add(time.Duration(sec) * time.Second),
		Note: []byte(fmt.Sprintf("warden-audit\n%d\nhash\n\n— warden-audit sig\n— %s cosig%d\n", size, w, sec))}
}

func storeEmpty(t *testing.T, st witness.Store) {
	rows, err := st.Cosignatures(context.Background(), "", 0, 10)
	if err != nil || len(rows) != 0 {
		t.Fatalf("empty store: %v %v", rows, err)
	}
}

func equal(a, b witness.Cosignature) bool {
	return a.Size == b.Size && a.Witness == b.Witness && a.KeyHash == b.KeyHash && a.Time.Equal(b.Time) && bytes.Equal(a.Note, b.Note)
}

func storePutRead(t *testing.T, st witness.Store) {
	ctx := context.Background()
	in := []witness.Cosignature{cosig(10, "w1", 1), cosig(10, "w2", 2), cosig(20, "w1", 3), cosig(5, "w2", 4)}
	for _, c := range in {
		if err := st.PutCosignature(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := st.Cosignatures(ctx, "", 0, 10)
	if err != nil || len(rows) != 4 {
		t.Fatalf("all: %v %v", rows, err)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Size > rows[i-1].Size {
			t.Fatalf("not by descending size: %d then %d", rows[i-1].Size, rows[i].Size)
		}
	}
	if !equal(rows[0], in[2]) || !equal(rows[3], in[3]) {
		t.Fatalf("round trip: %+v / %+v", rows[0], rows[3])
	}
	rows, _ = st.Cosignatures(ctx, "w2", 0, 10)
	if len(rows) != 2 || rows[0].Size != 10 || rows[1].Size != 5 || rows[0].Witness != "w2" {
		t.Fatalf("witness filter: %+v", rows)
	}
	rows, _ = st.Cosignatures(ctx, "", 20, 10)
	if len(rows) != 3 || rows[0].Size != 10 {
		t.Fatalf("before 20: %+v", rows)
	}
	rows, _ = st.Cosignatures(ctx, "w1", 0, 1)
	if len(rows) != 1 || rows[0].Size != 20 {
		t.Fatalf("newest of w1: %+v", rows)
	}
}

func storeFirstKept(t *testing.T, st witness.Store) {
	ctx := context.Background()
	a, b := cosig(7, "w1", 1), cosig(7, "w1", 9)
	if err := st.PutCosignature(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCosignature(ctx, b); err != nil {
		t.Fatalf("a second cosignature for the same size must be a no-op: %v", err)
	}
	rows, _ := st.Cosignatures(ctx, "", 0, 10)
	if len(rows) != 1 || !equal(rows[0], a) {
		t.Fatalf("rows = %+v, want only the first", rows)
	}
}

func storePaging(t *testing.T, st witness.Store) {
	ctx := context.Background()
	for i := int64(1); i <= 25; i++ {
		if err := st.PutCosignature(ctx, cosig(i, "w", int(i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	before := int64(0)
	for {
		rows, err := st.Cosignatures(ctx, "", before, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			got = append(got, r.Size)
		}
		if len(rows) < 10 {
			break
		}
		before = rows[len(rows)-1].Size
	}
	if len(got) != 25 || got[0] != 25 || got[24] != 1 {
		t.Fatalf("paged sizes = %v", got)
	}
}

func storeConcurrent(t *testing.T, st witness.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- st.PutCosignature(ctx, cosig(int64(i), "w", i))
		}()
		go func() {
			defer wg.Done()
			_, err := st.Cosignatures(ctx, "", 0, 5)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := st.Cosignatures(ctx, "w", 0, 100)
	if len(rows) != 20 {
		t.Fatalf("%d rows after 20 concurrent puts", len(rows))
	}
}
