// Package postgres implements audit.Store and audit.Queue on PostgreSQL
// (github.com/jackc/pgx/v5), so several gateway replicas can share one
// tamper-evident audit log.
//
// How replicas share the log:
//   - Every replica admits entries with Enqueue: an INSERT into the pending
//     table, committed with synchronous_commit on before Enqueue returns.
//     Concurrent Enqueue calls share one transaction (group commit). The
//     commit sends a NOTIFY that wakes the integrator. Admission never
//     waits for sequencing.
//   - One replica at a time is the integrator: Lead takes the PostgreSQL
//     session advisory lock (pg_try_advisory_lock) on a dedicated
//     connection. If that connection dies, PostgreSQL releases the lock and
//     another replica's Lead takes it over.
//   - The integrator (audit.Log) reads pending entries in enqueue order
//     (Unsequenced), computes their seqs and tree hashes and calls Append,
//     which inserts the entries and hashes and deletes those pending rows in
//     one transaction, on the leader's own connection: if the leader lost
//     its connection, its transaction dies with it. Append also takes the
//     advisory lock for its transaction and checks the log size under it,
//     so a stale integrator gets audit.ErrConflict instead of a fork; entry
//     IDs are unique, so no entry is sequenced twice.
//   - A replica that needs the Seq of an entry it enqueued calls WaitSeq,
//     which waits for the integrator's NOTIFY (or polls). An integrator
//     can block in WaitPending until some replica enqueues.
//   - A pending row that is not a valid canonical entry cannot come from a
//     Log (someone wrote it with SQL); Unsequenced moves it to the
//     rejected table and skips it, so it cannot stall the log.
//
// Trust boundary: until an entry is sequenced and covered by a signed
// checkpoint, its only protection is the database's. Anyone who can
// INSERT into the pending table can have the integrator sign an entry of
// their making; grant the gateway role alone write access to the schema.
//
// Guarantees: entries, tree hashes and checkpoints are never updated or
// deleted by this package, and the schema refuses UPDATE, DELETE and
// TRUNCATE on their tables with a trigger ('audit entries are
// append-only'). A pending row may only be deleted once its entry is in
// the log, so an admission cannot silently vanish before it is sequenced.
// Someone who bypasses the triggers (a superuser) can still edit rows;
// audit.Verify detects that from the hashes and signed checkpoints.
// Every table lives in one schema (default "warden"), created and
// migrated idempotently by Open under an advisory lock, with the applied
// versions in schema_migrations.
//
// This package never logs the DSN (it may hold a password) or entry
// contents.
package postgres
