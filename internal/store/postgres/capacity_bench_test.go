package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// cpuMeter measures CPU time (user+system) of this process and of the
// PostgreSQL backends serving this database (found in pg_stat_activity,
// read from /proc: the server must run on this machine), so a benchmark
// can report CPU per entry — a figure that a busy machine distorts far
// less than entries per second (docs/scaling.md). PostgreSQL's shared
// background processes (WAL writer, checkpointer) are not counted, nor is
// other databases' load on a shared server.
type cpuMeter struct {
	dsn  string
	self time.Duration
	pg   map[int]time.Duration
}

func startCPU(dsn string) *cpuMeter {
	m := &cpuMeter{dsn: dsn, self: selfCPU()}
	if dsn != "" {
		m.pg, _ = backendCPU(dsn)
	}
	return m
}

// report adds gw-cpu-µs/entry and, for PostgreSQL, pg-cpu-µs/entry.
func (m *cpuMeter) report(b *testing.B, entries int) {
	if entries <= 0 {
		return
	}
	b.ReportMetric(float64((selfCPU()-m.self).Microseconds())/float64(entries), "gw-cpu-µs/entry")
	if m.dsn == "" || m.pg == nil {
		return
	}
	now, ok := backendCPU(m.dsn)
	if !ok {
		return
	}
	var used time.Duration
	for pid, c := range now {
		used += c - m.pg[pid]
	}
	b.ReportMetric(float64(used.Microseconds())/float64(entries), "pg-cpu-µs/entry")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU returns the CPU time of each backend connected to the DSN's
// database, by pid.
func backendCPU(dsn string) (map[int]time.Duration, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, false
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		return nil, false
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, false
	}
	out := map[int]time.Duration{}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
		if err != nil {
			return nil, false // not on this machine
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			return nil, false
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[int(pid)] = time.Duration(u+st) * time.Second / 100 // USER_HZ is 100 on Linux
	}
	return out, true
}

// BenchmarkSequencer measures the integrator alone, the serial part of the
// PostgreSQL layout: b.N admissions are enqueued first (not timed), then
// one audit.Log takes the lead and sequences the backlog (reads pending
// rows, computes the Merkle hashes, inserts entries and hashes, deletes
// the pending rows, signs checkpoints). entries/s is the drain rate: the
// most one log can sequence, whatever the number of replicas.
//
//	WARDEN_TEST_POSTGRES=... go test -run '^$' -bench BenchmarkSequencer -benchtime 20000x ./internal/store/postgres/
func BenchmarkSequencer(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(dir, "k"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	cfg := audit.Config{Store: "postgres", DSN: testDSN(b), CheckpointEvery: 1000, CheckpointInterval: time.Second}
	schema := newSchema(b)
	enq := openStore(b, schema, WithMaxConns(8), WithLogger(quiet))
	const batch = 256
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		ps := make([]audit.Pending, n)
		for j := range ps {
			e := &audit.Entry{
				V: audit.SchemaVersion, ID: uuid.Must(uuid.NewV7()).String(), Time: time.Now().UTC(), Instance: "bench",
				Kind: audit.KindRequestAdmitted, RequestID: "bench",
				Principal: &identity.Principal{Issuer: "https://idp", Subject: "alice"},
				Route:     "chat", Method: "POST", Path: "/v1/chat/completions", Model: "llama-3",
				Params:   map[string]any{"temperature": 0.2, "max_tokens": 256},
				Decision: &audit.Decision{Action: "allow", Rule: "default", PolicyVersion: "abc"},
			}
			data, err := audit.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			ps[j] = audit.Pending{ID: e.ID, Data: data, Entry: e}
		}
		if err := enq.Enqueue(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
	st := openStore(b, schema, WithMaxConns(8), WithLogger(quiet))
	b.ResetTimer()
	m := startCPU(cfg.DSN)
	start := time.Now()
	l, err := audit.Open(ctx, st, cfg, signer, verifier, audit.WithInstance("integrator"), audit.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(ctx)
	for {
		n, err := st.PendingCount(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	m.report(b, b.N)
	// Disk per entry: every table, index and TOAST of the log's schema
	// (the pending rows are gone; entries, hashes and checkpoints remain).
	var size int64
	err = st.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&size)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/float64(b.N), "pg-disk-B/entry")
}
