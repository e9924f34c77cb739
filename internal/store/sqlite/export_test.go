package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// schemaV2 is the log's schema as version 2 created it (before the
// frame file).
var schemaV2 = strings.TrimSuffix(schema, framesSchema)

// OpenV2ForTest opens (creating) a store at path as binaries of schema
// version 2 wrote it: appends go to the entries and hashes tables in one
// SQLite transaction each (the code path those binaries ran, appendTxn,
// kept for this), there is no frame file, no frames_base marker and no
// search index. Tests build old stores with it to open them with Open
// (the migration) afterwards.
func OpenV2ForTest(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(path, q))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, schemaV2); err != nil {
		w.Close()
		return nil, fmt.Errorf("create v2 schema: %w", err)
	}
	if _, err := w.ExecContext(ctx, "PRAGMA user_version = 2"); err != nil {
		w.Close()
		return nil, err
	}
	n, err := size(ctx, w)
	if err != nil {
		w.Close()
		return nil, err
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &Store{path: path, w: w, r: r, fl: &flusher{walPath: path + "-wal", dbPath: path}, tablesForTest: true}
	s.base = 1 << 60 // reads: all from the tables
	s.fl.committed = n
	s.fl.durable.Store(n)
	return s, nil
}

// KeyToken is keyToken, for tests that edit the index file's full text.
var KeyToken = keyToken
