package sqlite

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

// schema creates the tables. Entries keep the canonical bytes (data) plus
// columns copied from them for search; the copies are not trusted by
// verification, which only reads data.
const schema = `
CREATE TABLE IF NOT EXISTS entries (
	seq         INTEGER PRIMARY KEY,
	id          TEXT    NOT NULL UNIQUE,
	data        BLOB    NOT NULL,
	time_ns     INTEGER NOT NULL,
	kind        TEXT    NOT NULL,
	subject     TEXT    NOT NULL DEFAULT '',
	route       TEXT    NOT NULL DEFAULT '',
	model       TEXT    NOT NULL DEFAULT '',
	request_id  TEXT    NOT NULL DEFAULT '',
	approval_id TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entries_time ON entries(time_ns);
CREATE INDEX IF NOT EXISTS entries_subject ON entries(subject, seq);
CREATE INDEX IF NOT EXISTS entries_route ON entries(route, seq);
CREATE INDEX IF NOT EXISTS entries_model ON entries(model, seq);
CREATE INDEX IF NOT EXISTS entries_kind ON entries(kind, seq);
CREATE INDEX IF NOT EXISTS entries_request ON entries(request_id, seq);
CREATE INDEX IF NOT EXISTS entries_approval ON entries(approval_id, seq);
CREATE INDEX IF NOT EXISTS entries_action ON entries(action, seq);

CREATE TABLE IF NOT EXISTS entry_masks (
	rule TEXT    NOT NULL,
	seq  INTEGER NOT NULL,
	PRIMARY KEY (rule, seq)
) WITHOUT ROWID;

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

-- Full text over redacted parameters, decision reason and details.
-- Contentless: the text is derived from entries.data; rowid = seq.
CREATE VIRTUAL TABLE IF NOT EXISTS entry_text USING fts5(body, content='');

CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entry_masks_no_update BEFORE UPDATE ON entry_masks
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entry_masks_no_delete BEFORE DELETE ON entry_masks
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
