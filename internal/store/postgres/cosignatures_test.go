package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

func TestCosignatureConformance(t *testing.T) {
	witnesstest.RunStore(t, func(t *testing.T) witness.Store { return openStore(t, newSchema(t)) })
}

// TestCosignaturesAppendOnly: the schema refuses to change, remove or
// truncate stored cosignatures.
func TestCosignaturesAppendOnly(t *testing.T) {
	schema := newSchema(t)
	st := openStore(t, schema)
	ctx := context.Background()
	if err := st.PutCosignature(ctx, witness.Cosignature{Size: 3, Witness: "w", KeyHash: 0xfeedface, Time: time.Unix(1700000000, 0), Note: []byte("n")}); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, stmt := range []string{"UPDATE cosignatures SET note = 'x'", "DELETE FROM cosignatures", "TRUNCATE cosignatures"} {
		if _, err := c.Exec(ctx, "SET search_path = "+schema+"; "+stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only refusal", stmt, err)
		}
	}
	rows, err := st.Cosignatures(ctx, "w", 0, 1)
	if err != nil || len(rows) != 1 || rows[0].KeyHash != 0xfeedface {
		t.Fatalf("after the attempts: %+v %v", rows, err)
	}
}
