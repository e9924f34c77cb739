package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/witness"
)

var _ witness.Store = (*Store)(nil)

// PutCosignature stores a witness's cosignature (a no-op if that witness
// key's cosignature for the size is already there). Durable on return
// (synchronous commit).
func (s *Store) PutCosignature(ctx context.Context, c witness.Cosignature) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO cosignatures (size, witness, key_hash, time_s, note)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, c.Size, c.Witness, int64(c.KeyHash), c.Time.Unix(), c.Note)
	if err != nil {
		return fmt.Errorf("postgres: put cosignature %d by %s: %w", c.Size, c.Witness, err)
	}
	return nil
}

// Cosignatures returns up to limit cosignatures with size < before (all
// sizes if before <= 0), newest first, of one witness unless witness is
// empty.
func (s *Store) Cosignatures(ctx context.Context, witnessName string, before int64, limit int) ([]witness.Cosignature, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	if limit <= 0 {
		limit = 100
	}
	var rows pgx.Rows
	var err error
	if witnessName == "" {
		rows, err = s.pool.Query(ctx, `SELECT size, witness, key_hash, time_s, note FROM cosignatures
			WHERE size < $1 ORDER BY size DESC, witness, key_hash LIMIT $2`, before, limit)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT size, witness, key_hash, time_s, note FROM cosignatures
			WHERE witness = $1 AND size < $2 ORDER BY size DESC, key_hash LIMIT $3`, witnessName, before, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: cosignatures: %w", err)
	}
	var out []witness.Cosignature
	var c witness.Cosignature
	var kh, ts int64
	_, err = pgx.ForEachRow(rows, []any{&c.Size, &c.Witness, &kh, &ts, &c.Note}, func() error {
		out = append(out, witness.Cosignature{Size: c.Size, Witness: c.Witness, KeyHash: uint32(kh),
			Time: time.Unix(ts, 0).UTC(), Note: append([]byte(nil), c.Note...)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: cosignatures: %w", err)
	}
	return out, nil
}
