package postgres

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order; migrations[i] is version i+1. They run
// with search_path set to the store's schema. Never edit one that has
// shipped: append a new one.
var migrations = []string{
	// 1: entries, hashes, checkpoints (append-only), pending (the queue).
	`
CREATE TABLE entries (
	seq         bigint  PRIMARY KEY CHECK (seq >= 0),
	id          text    NOT NULL UNIQUE,
	data        bytea   NOT NULL,
	leaf_hash   bytea   NOT NULL CHECK (length(leaf_hash) = 32),
	time_ns     bigint  NOT NULL,
	kind        text    NOT NULL,
	subject     text    NOT NULL DEFAULT '',
	route       text    NOT NULL DEFAULT '',
	model       text    NOT NULL DEFAULT '',
	request_id  text    NOT NULL DEFAULT '',
	approval_id text    NOT NULL DEFAULT '',
	action      text    NOT NULL DEFAULT '',
	mask_rules  text[]  NOT NULL DEFAULT '{}',
	search_text text    NOT NULL DEFAULT '',
	search_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
);
CREATE INDEX entries_time     ON entries (time_ns);
CREATE INDEX entries_subject  ON entries (subject, seq);
CREATE INDEX entries_route    ON entries (route, seq);
CREATE INDEX entries_model    ON entries (model, seq);
CREATE INDEX entries_kind     ON entries (kind, seq);
CREATE INDEX entries_request  ON entries (request_id, seq);
CREATE INDEX entries_approval ON entries (approval_id, seq);
CREATE INDEX entries_action   ON entries (action, seq);
CREATE INDEX entries_masks    ON entries USING gin (mask_rules);
CREATE INDEX entries_text     ON entries USING gin (search_tsv);

CREATE TABLE hashes (
	idx  bigint PRIMARY KEY CHECK (idx >= 0),
	hash bytea  NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE checkpoints (
	size       bigint PRIMARY KEY CHECK (size >= 0),
	hash       bytea  NOT NULL CHECK (length(hash) = 32),
	time_ns    bigint NOT NULL,
	note       bytea  NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- The queue: admitted, durable, not yet sequenced. pos gives the stable
-- order in which the integrator takes entries.
CREATE TABLE pending (
	pos         bigserial PRIMARY KEY,
	id          text  NOT NULL UNIQUE,
	data        bytea NOT NULL,
	enqueued_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit % are append-only', TG_ARGV[0]
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
	FOR EACH ROW EXECUTE FUNCTION reject_change('entries');
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
	FOR EACH STATEMENT EXECUTE FUNCTION reject_change('entries');
CREATE TRIGGER hashes_append_only BEFORE UPDATE OR DELETE ON hashes
	FOR EACH ROW EXECUTE FUNCTION reject_change('hashes');
CREATE TRIGGER hashes_no_truncate BEFORE TRUNCATE ON hashes
	FOR EACH STATEMENT EXECUTE FUNCTION reject_change('hashes');
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
	FOR EACH ROW EXECUTE FUNCTION reject_change('checkpoints');
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION reject_change('checkpoints');
`,
	// 2: the queue may only lose an entry by sequencing it. A pending row
	// is an admission that is durable but not yet in the tree; deleting it
	// otherwise would silently drop evidence.
	`
CREATE FUNCTION pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM entries e WHERE e.id = OLD.id) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'audit pending entries leave the queue only by being sequenced'
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER pending_guard BEFORE UPDATE OR DELETE ON pending
	FOR EACH ROW EXECUTE FUNCTION pending_guard();
CREATE TRIGGER pending_no_truncate BEFORE TRUNCATE ON pending
	FOR EACH STATEMENT EXECUTE FUNCTION reject_change('pending entries');
`,
	// 3: pending rows that are not valid entries (they can only come from
	// outside Warden: the Log marshals what it enqueues) are moved here by
	// Unsequenced, so one bad row cannot stall the integrator. Kept forever
	// as evidence.
	`
CREATE TABLE rejected (
	pos         bigint PRIMARY KEY,
	id          text   NOT NULL,
	data        bytea  NOT NULL,
	reason      text   NOT NULL,
	rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER rejected_append_only BEFORE UPDATE OR DELETE ON rejected
	FOR EACH ROW EXECUTE FUNCTION reject_change('rejected entries');
CREATE TRIGGER rejected_no_truncate BEFORE TRUNCATE ON rejected
	FOR EACH STATEMENT EXECUTE FUNCTION reject_change('rejected entries');
CREATE OR REPLACE FUNCTION pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND (EXISTS (SELECT 1 FROM entries e WHERE e.id = OLD.id)
		OR EXISTS (SELECT 1 FROM rejected r WHERE r.pos = OLD.pos)) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'audit pending entries leave the queue only by being sequenced'
		USING ERRCODE = 'insufficient_privilege';
END
$$;
`,
	// 4: witness cosignatures beside the checkpoints (internal/witness):
	// one row per (checkpoint size, witness key), append-only.
	`
CREATE TABLE cosignatures (
	size       bigint NOT NULL CHECK (size >= 0),
	witness    text   NOT NULL,
	key_hash   bigint NOT NULL,
	time_s     bigint NOT NULL,
	note       bytea  NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (size, witness, key_hash)
);
CREATE INDEX cosignatures_witness ON cosignatures (witness, size);
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON cosignatures
	FOR EACH ROW EXECUTE FUNCTION reject_change('cosignatures');
CREATE TRIGGER cosignatures_no_truncate BEFORE TRUNCATE ON cosignatures
	FOR EACH STATEMENT EXECUTE FUNCTION reject_change('cosignatures');
`,
	// 5: the search index leaves the entries table (decision 015). It is
	// derived from the entries, rebuilt from them at will (not
	// append-only), and written by an indexer after sequencing instead of
	// in the integrator's transaction. Existing logs are indexed again by
	// the indexer catching up.
	`
DROP INDEX entries_time, entries_kind;
ALTER TABLE entries DROP COLUMN search_tsv, DROP COLUMN search_text, DROP COLUMN subject,
	DROP COLUMN route, DROP COLUMN model, DROP COLUMN request_id, DROP COLUMN approval_id,
	DROP COLUMN action, DROP COLUMN mask_rules;
` + indexTable("entry_index") + `
CREATE INDEX entry_index_time     ON entry_index (time_ns);
CREATE INDEX entry_index_subject  ON entry_index (subject, seq);
CREATE INDEX entry_index_route    ON entry_index (route, seq);
CREATE INDEX entry_index_model    ON entry_index (model, seq);
CREATE INDEX entry_index_kind     ON entry_index (kind, seq);
CREATE INDEX entry_index_request  ON entry_index (request_id, seq);
CREATE INDEX entry_index_approval ON entry_index (approval_id, seq);
CREATE INDEX entry_index_action   ON entry_index (action, seq);
CREATE INDEX entry_index_masks    ON entry_index USING gin (mask_rules);
CREATE INDEX entry_index_text     ON entry_index USING gin (search_tsv);
`,
}

// indexTable creates a search index table named name (the store's, or a
// reference one built by CheckIndex).
func indexTable(name string) string {
	return `CREATE TABLE ` + name + ` (
	seq         bigint  PRIMARY KEY,
	time_ns     bigint  NOT NULL,
	kind        text    NOT NULL,
	subject     text    NOT NULL,
	route       text    NOT NULL,
	model       text    NOT NULL,
	request_id  text    NOT NULL,
	approval_id text    NOT NULL,
	action      text    NOT NULL,
	mask_rules  text[]  NOT NULL,
	search_text text    NOT NULL,
	search_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
);`
}

// lockKey derives a 64-bit advisory lock key for purpose within schema, so
// stores in different schemas of one database do not contend.
func lockKey(schema, purpose string) int64 {
	h := fnv.New64a()
	h.Write([]byte("warden/audit/" + purpose + "/" + schema))
	return int64(h.Sum64())
}

// migrate creates the schema and applies missing migrations in one
// transaction, serialised across replicas by a transaction advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (version int, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(schema, "migrate")); err != nil {
		return 0, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return 0, fmt.Errorf("postgres: migrate: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    int PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
		return 0, fmt.Errorf("postgres: migrate: read version: %w", err)
	}
	if version > len(migrations) {
		return version, fmt.Errorf("postgres: migrate: schema %s is at version %d, newer than this binary (%d)", schema, version, len(migrations))
	}
	for v := version + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return version, fmt.Errorf("postgres: migrate to version %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", v); err != nil {
			return version, fmt.Errorf("postgres: migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return version, fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return len(migrations), nil
}
