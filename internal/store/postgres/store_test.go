package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
	"github.com/wardenhq/warden/internal/identity"
)

// testDSN returns the test database, or skips the test.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("WARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WARDEN_TEST_POSTGRES not set; skipping PostgreSQL test")
	}
	return dsn
}

// newSchema returns a fresh schema name, dropped when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := testDSN(t)
	var b [6]byte
	rand.Read(b[:])
	name := "wt_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openStore opens a store in schema, closed when the test ends.
func openStore(t testing.TB, schema string, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]Option{WithSchema(schema), WithMaxConns(4), WithPollInterval(200 * time.Millisecond)}, opts...)
	s, err := Open(ctx, testDSN(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawConn is a plain connection with search_path set to schema, for
// poking at the tables the way an administrator would.
func rawConn(t testing.TB, schema string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	testDSN(t)
	storetest.Run(t, func(t *testing.T) audit.Store { return openStore(t, newSchema(t)) })
}

// testEntry returns a distinct entry.
func testEntry(i int, instance string) *audit.Entry {
	return &audit.Entry{
		V:         audit.SchemaVersion,
		Time:      time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		Kind:      audit.KindRequestAdmitted,
		ID:        instance + "-" + strings.Repeat("0", 6-len(itoa(i))) + itoa(i),
		RequestID: "req-" + itoa(i),
		Instance:  instance,
		Principal: &identity.Principal{Issuer: "https://idp", Subject: "alice"},
		Route:     "chat",
		Params:    map[string]any{"words": "hello world " + instance},
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// tlogBatch builds the batch that appends es at from, reading earlier
// hashes from st.
func tlogBatch(st *Store, from int64, es []*audit.Entry) audit.Batch {
	ctx := context.Background()
	b := audit.Batch{HashStart: tlog.StoredHashCount(from)}
	local := map[int64]tlog.Hash{}
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if h, ok := local[x]; ok {
				out[i] = h
				continue
			}
			hs, err := st.ReadHashes(ctx, []int64{x})
			if err != nil {
				return nil, err
			}
			out[i] = hs[0]
		}
		return out, nil
	})
	for i, e := range es {
		seq := from + int64(i)
		data, err := audit.Marshal(e)
		if err != nil {
			panic(err) // test entries always marshal
		}
		hs, err := tlog.StoredHashes(seq, data, r)
		if err != nil {
			panic(err)
		}
		for j, h := range hs {
			local[tlog.StoredHashCount(seq)+int64(j)] = h
		}
		b.Records = append(b.Records, audit.Record{Seq: seq, Data: data, Entry: e})
		b.Hashes = append(b.Hashes, hs...)
	}
	return b
}

// appendDirect sequences entries into st as a single writer would,
// returning the batch.
func appendDirect(t testing.TB, st *Store, entries []*audit.Entry) audit.Batch {
	t.Helper()
	from, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := tlogBatch(st, from, entries)
	if err := st.Append(context.Background(), b); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return b
}

// leaderPID is the backend PID of the leader connection, or 0.
func (s *Store) leaderPID() uint32 {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if s.leader == nil {
		return 0
	}
	return s.leader.PgConn().PID()
}

func TestAppendOnlyTriggers(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openStore(t, schema)
	ctx := context.Background()
	var es []*audit.Entry
	for i := range 3 {
		es = append(es, testEntry(i, "a"))
	}
	b := appendDirect(t, st, es)
	if err := st.PutCheckpoint(ctx, audit.Checkpoint{Size: 3, Hash: tlog.Hash{1}, Time: time.Now(), Note: []byte("n\n")}); err != nil {
		t.Fatal(err)
	}
	c := rawConn(t, schema)
	for _, sql := range []string{
		"UPDATE entries SET data = 'forged' WHERE seq = 1",
		"UPDATE entries SET kind = 'x'",
		"DELETE FROM entries WHERE seq = 2",
		"DELETE FROM entries",
		"TRUNCATE entries",
		"TRUNCATE entries CASCADE",
		"UPDATE hashes SET hash = hash",
		"DELETE FROM hashes WHERE idx = 0",
		"TRUNCATE hashes",
		"UPDATE checkpoints SET note = 'forged'",
		"DELETE FROM checkpoints",
		"TRUNCATE checkpoints",
	} {
		t.Run(sql, func(t *testing.T) {
			_, err := c.Exec(ctx, sql)
			if err == nil {
				t.Fatalf("%s succeeded", sql)
			}
			if !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("%s: err = %v, want the append-only trigger", sql, err)
			}
		})
	}
	if _, err := c.Exec(ctx, "UPDATE entries SET data = 'x' WHERE seq = 0"); err == nil ||
		!strings.Contains(err.Error(), "audit entries are append-only") {
		t.Fatalf("update entries: err = %v, want 'audit entries are append-only'", err)
	}
	recs, err := st.ReadRecords(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if string(r.Data) != string(b.Records[i].Data) {
			t.Fatalf("record %d changed", i)
		}
	}
	if n, _ := st.Size(ctx); n != 3 {
		t.Fatalf("size = %d after refused deletes, want 3", n)
	}
}

func TestOpenMigratesOnceConcurrently(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(context.Background(), testDSN(t), WithSchema(schema), WithMaxConns(2))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	// Open once more: nothing to do, and the version table lists each
	// migration exactly once.
	openStore(t, schema)
	c := rawConn(t, schema)
	var n, max int
	if err := c.QueryRow(context.Background(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) || max != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, max %d; want %d", n, max, len(migrations))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means valid
	}{
		{"defaults", Config{DSN: "postgres://x/y"}, ""},
		{"no dsn", Config{}, "dsn: is required"},
		{"bad schema", Config{DSN: "x", Schema: "Robert'); DROP"}, "schema:"},
		{"long schema", Config{DSN: "x", Schema: strings.Repeat("a", 41)}, "schema:"},
		{"one conn", Config{DSN: "x", MaxConns: 1}, "max_conns:"},
		{"negative timeout", Config{DSN: "x", WriteTimeout: -time.Second}, "write_timeout:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.SetDefaults()
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want error containing %q", err, tc.want)
			}
		})
	}
}
