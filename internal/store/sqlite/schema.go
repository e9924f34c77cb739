package sqlite

// schemaVersion is stored in PRAGMA user_version. Version 1 kept the
// search columns, their indexes, the full-text and the mask-rule index in
// the log's file; version 2 keeps only what verification needs (entry
// bytes, tree hashes, checkpoints) and moves the search index to its own
// file (index.go). Migrating drops the old index structures; a version-1
// entries table keeps its copied columns (id, time_ns, kind, …), which
// are still written but no longer indexed or read. Version 3 keeps the
// records, tree hashes and batch heads in the frame file (FramesPath,
// decision 042): the entries and hashes tables are no longer written,
// and in a store migrated from version 2 they are the log's read-only
// prefix [0, base), base being the frames_base row. An older binary
// refuses version 3, so it cannot append to the tables behind the frame
// file's back.
const schemaVersion = 3

// schema creates the log's tables in a new store: what admission makes
// durable, nothing more.
const schema = `
CREATE TABLE IF NOT EXISTS entries (
	seq  INTEGER PRIMARY KEY,
	data BLOB    NOT NULL
);

CREATE TABLE IF NOT EXISTS hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB    NOT NULL
);

CREATE TABLE IF NOT EXISTS checkpoints (
	size    INTEGER PRIMARY KEY,
	hash    BLOB    NOT NULL,
	time_ns INTEGER NOT NULL,
	note    BLOB    NOT NULL
);
` + headSchema + triggers + framesSchema

// framesSchema holds the frames_base marker: the first record of the
// frame file, the tables' size when it was made (0 for a new store).
// Written once, after the frame file is created and synced.
const framesSchema = `
CREATE TABLE IF NOT EXISTS frames_base (
	id   INTEGER PRIMARY KEY CHECK (id = 0),
	base INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS frames_base_no_update BEFORE UPDATE ON frames_base
BEGIN SELECT RAISE(ABORT, 'the frames_base marker is written once'); END;
CREATE TRIGGER IF NOT EXISTS frames_base_no_delete BEFORE DELETE ON frames_base
BEGIN SELECT RAISE(ABORT, 'the frames_base marker is written once'); END;
`

// headSchema holds the tree head signed after every batch, written in the
// batch's transaction (audit.HeadKeeper, decision 018). One row, replaced
// by every batch: it is not history (the checkpoints table is), only the
// newest signature over what was acknowledged. A version-2 store opened by
// an older binary just has one more table.
const headSchema = `
CREATE TABLE IF NOT EXISTS head (
	id   INTEGER PRIMARY KEY CHECK (id = 0),
	size INTEGER NOT NULL,
	note BLOB    NOT NULL
);
`

const triggers = `
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS hashes_no_update BEFORE UPDATE ON hashes
BEGIN SELECT RAISE(ABORT, 'audit hashes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS hashes_no_delete BEFORE DELETE ON hashes
BEGIN SELECT RAISE(ABORT, 'audit hashes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
`

// migrateV1 turns a version-1 store into version 2: the search structures
// in the log's file go (the index file is rebuilt from the entries).
const migrateV1 = `
DROP INDEX IF EXISTS entries_time;
DROP INDEX IF EXISTS entries_subject;
DROP INDEX IF EXISTS entries_route;
DROP INDEX IF EXISTS entries_model;
DROP INDEX IF EXISTS entries_kind;
DROP INDEX IF EXISTS entries_request;
DROP INDEX IF EXISTS entries_approval;
DROP INDEX IF EXISTS entries_action;
DROP TABLE IF EXISTS entry_text;
DROP TABLE IF EXISTS entry_masks;
`

// indexSchema creates the search index in its own file. Everything here
// is derived from the log's entries by audit.Index and can be dropped and
// rebuilt at any time (warden index rebuild).
const indexSchema = `
-- How many leading log records the index holds (IndexedSize), one row,
-- written by every batch in its transaction. There is no row per entry
-- (decision 046): the request id and subject, which nearly every entry
-- has, are exact terms of entry_text (keyToken), written as FTS5 writes
-- everything, in sorted segments; a table of them cost a B-tree insert
-- per entry.
CREATE TABLE IF NOT EXISTS index_state (
	id      INTEGER PRIMARY KEY CHECK (id = 0),
	indexed INTEGER NOT NULL
);
-- The approval ids, which few entries have, with an index for the
-- lookup.
CREATE TABLE IF NOT EXISTS entry_approvals (
	seq         INTEGER PRIMARY KEY,
	approval_id TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS entry_approvals_id ON entry_approvals(approval_id);
-- Kind, principal, route, model, action and time are searched in
-- count_blocks, which hold them column by column anyway (decision 027).

-- Full text over redacted parameters, decision reason and details
-- (body); the request id (ids) and the principal's subject (subject),
-- each one exact token (keyToken: the id as it is if it is lowercase hex
-- as the gateway's are, else x and the hex of its bytes), so that a
-- search by request id, or by principal beside other filters, matches
-- exactly the entries that have it (decision 046; a B-tree of random ids
-- was written all over, decision 035); and the entry's masking rules
-- (rules), each as one token, the hex of its name (ruleTokens, decision
-- 039). Contentless: the text is derived from the entries; rowid = seq.
-- Every indexed entry has a row. No column sizes (columnsize=0): nothing
-- ranks results, and they cost a row per entry.
CREATE VIRTUAL TABLE IF NOT EXISTS entry_text USING fts5(body, ids, rules, subject, content='', columnsize=0);

-- Count blocks for Log.Aggregate (audit.CountBlock): for each chunk of
-- audit.CountChunk entries starting at start, the aggregate dimensions and
-- times of its first n entries, column by column, and their time range.
-- Extended as the indexer goes; any grouping, kind filter and time window
-- is counted from them.
--
-- vals lists the block's kinds, principals, routes, models and actions
-- (audit.CountBlock.AppendValues), ahead of data so that a search reads
-- it without reading data (decision 027).
CREATE TABLE IF NOT EXISTS count_blocks (
	start  INTEGER PRIMARY KEY,
	n      INTEGER NOT NULL,
	min_ns INTEGER NOT NULL,
	max_ns INTEGER NOT NULL,
	vals   BLOB    NOT NULL,
	data   BLOB    NOT NULL
);
`

// dropIndexSchema removes the index tables (ResetIndex recreates them).
const dropIndexSchema = `
DROP TABLE IF EXISTS entry_fields;
DROP TABLE IF EXISTS index_state;
DROP TABLE IF EXISTS entry_approvals;
DROP TABLE IF EXISTS entry_masks;
DROP TABLE IF EXISTS entry_text;
DROP TABLE IF EXISTS count_spans;
DROP TABLE IF EXISTS count_rows;
DROP TABLE IF EXISTS count_blocks;
`
