package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wardenhq/warden/internal/witness"
)

var _ witness.Store = (*Store)(nil)

// cosignatureSchema keeps witness cosignatures beside the checkpoints:
// one row per (checkpoint size, witness key), append-only like the log.
// It is applied by migrate on every open (IF NOT EXISTS), so stores
// created before witnessing gain it without a schema version bump.
const cosignatureSchema = `
CREATE TABLE IF NOT EXISTS cosignatures (
	size     INTEGER NOT NULL,
	witness  TEXT    NOT NULL,
	key_hash INTEGER NOT NULL,
	time_s   INTEGER NOT NULL,
	note     BLOB    NOT NULL,
	PRIMARY KEY (size, witness, key_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cosignatures_witness ON cosignatures(witness, size);
CREATE TRIGGER IF NOT EXISTS cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'audit cosignatures are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'audit cosignatures are append-only'); END;
`

// PutCosignature stores a witness's cosignature (a no-op if that witness
// key's cosignature for the size is already there). Durable on return.
func (s *Store) PutCosignature(ctx context.Context, c witness.Cosignature) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkWrite(); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO cosignatures(size, witness, key_hash, time_s, note)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, c.Size, c.Witness, int64(c.KeyHash), c.Time.Unix(), c.Note)
	if err != nil {
		return fmt.Errorf("sqlite: put cosignature %d by %s: %w", c.Size, c.Witness, err)
	}
	return nil
}

// Cosignatures returns up to limit cosignatures with size < before (all
// sizes if before <= 0), newest first, of one witness unless witness is
// empty. A store without the table (opened read-only, made before
// witnessing) has none.
func (s *Store) Cosignatures(ctx context.Context, witnessName string, before int64, limit int) ([]witness.Cosignature, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.readOnly {
		var n int
		if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'cosignatures'").Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
		}
		if n == 0 {
			return nil, nil
		}
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	if limit <= 0 {
		limit = 100
	}
	var rows *sql.Rows
	var err error
	if witnessName == "" {
		rows, err = s.r.QueryContext(ctx, `SELECT size, witness, key_hash, time_s, note FROM cosignatures
			WHERE size < ? ORDER BY size DESC, witness, key_hash LIMIT ?`, before, limit)
	} else {
		rows, err = s.r.QueryContext(ctx, `SELECT size, witness, key_hash, time_s, note FROM cosignatures
			WHERE witness = ? AND size < ? ORDER BY size DESC, key_hash LIMIT ?`, witnessName, before, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
	}
	defer rows.Close()
	var out []witness.Cosignature
	for rows.Next() {
		var c witness.Cosignature
		var kh, ts int64
		if err := rows.Scan(&c.Size, &c.Witness, &kh, &ts, &c.Note); err != nil {
			return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
		}
		c.KeyHash, c.Time = uint32(kh), time.Unix(ts, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
	}
	return out, nil
}
