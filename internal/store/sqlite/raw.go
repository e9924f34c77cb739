package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

// rawConn runs the log's append transaction on the writer connection's
// driver connection (sql.Conn.Raw) through driver statements prepared
// once, BEGIN IMMEDIATE and COMMIT included (decision 033).
//
// Through database/sql every batch paid for BeginTx (the driver parses
// and finalizes "begin immediate" each time, and database/sql starts a
// goroutine watching the transaction's context), for a goroutine per
// statement that modernc's driver starts to interrupt SQLite when a
// cancellable context ends (interruptOnDone: a progress handler and a
// goroutine around every Exec), and for Tx.StmtContext's per-call
// statement wrapper and argument conversion. Here the statements run
// with no context the driver watches: the batch's context is checked
// before each statement instead, so a write timeout ends the
// transaction between statements (rolled back, the append fails), not
// inside one; a statement waiting for a lock is bounded by busy_timeout
// as before.
//
// Only the goroutine holding Store.mu uses it, inside Raw: database/sql
// hands the one connection to nobody else meanwhile.
type rawConn struct {
	dc    driver.Conn // the driver connection the statements belong to
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
	// shapes holds the texts of the multi-row INSERTs met so far.
	shapes map[shape]string
}

// errNoRawStmt: the driver does not run statements with NamedValues (not
// expected of modernc's driver; checked, not assumed).
var errNoRawStmt = errors.New("sqlite: driver statement without ExecContext/QueryContext")

// bind resets the prepared statements when database/sql hands a different
// driver connection (the former one was closed: its statements with it).
func (r *rawConn) bind(dc driver.Conn) {
	if r.dc == dc {
		return
	}
	r.dc = dc
	r.stmts = map[string]driver.Stmt{}
}

func (r *rawConn) stmt(query string) (driver.Stmt, error) {
	if st := r.stmts[query]; st != nil {
		return st, nil
	}
	var st driver.Stmt
	var err error
	if p, ok := r.dc.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(context.Background(), query)
	} else {
		st, err = r.dc.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	r.stmts[query] = st
	return st, nil
}

// exec runs query with args (values the driver takes as they are: int64,
// []byte, string), unless ctx has ended.
func (r *rawConn) exec(ctx context.Context, query string, args ...driver.Value) error {
	r.args = r.args[:0]
	for i, v := range args {
		r.args = append(r.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return r.execNamed(ctx, query, r.args)
}

func (r *rawConn) execNamed(ctx context.Context, query string, args []driver.NamedValue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := r.stmt(query)
	if err != nil {
		return err
	}
	x, ok := st.(driver.StmtExecContext)
	if !ok {
		return errNoRawStmt
	}
	_, err = x.ExecContext(context.Background(), args)
	return err
}

// queryInt64 returns the first column of the one row query returns.
func (r *rawConn) queryInt64(ctx context.Context, query string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st, err := r.stmt(query)
	if err != nil {
		return 0, err
	}
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return 0, errNoRawStmt
	}
	rows, err := q.QueryContext(context.Background(), nil)
	if err != nil {
		return 0, err
	}
	dest := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(dest)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, io.EOF):
		return 0, sql.ErrNoRows
	case err != nil:
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("sqlite: %q returned %T, want an integer", query, dest[0])
	}
	return n, nil
}

// insert inserts n rows of cols values each with multi-row INSERTs of
// power-of-two row counts (at most nine statement shapes per table, each
// prepared once, as inserts.insert does through database/sql); row
// appends the values of row i to args.
func (r *rawConn) insert(ctx context.Context, head string, cols, n int, row func(i int, args []driver.Value) []driver.Value) error {
	vals := make([]driver.Value, 0, min(n, chunkPer(cols))*cols)
	return chunkRows(cols, n, func(lo, rows int) error {
		vals = vals[:0]
		for i := lo; i < lo+rows; i++ {
			vals = row(i, vals)
		}
		if len(vals) != rows*cols {
			return fmt.Errorf("sqlite: insert: %d values for %d rows of %d columns", len(vals), rows, cols)
		}
		r.args = r.args[:0]
		for i, v := range vals {
			r.args = append(r.args, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		return r.execNamed(ctx, r.shapeQuery(head, cols, rows), r.args)
	})
}

// shapeQuery is the text of a multi-row INSERT, built once per shape.
func (r *rawConn) shapeQuery(head string, cols, rows int) string {
	k := shape{head, cols, rows}
	if q, ok := r.shapes[k]; ok {
		return q
	}
	if r.shapes == nil {
		r.shapes = map[shape]string{}
	}
	q := k.query()
	r.shapes[k] = q
	return q
}

// close closes the prepared statements (call it inside Raw, before the
// connection closes).
func (r *rawConn) close() error {
	var errs []error
	for _, st := range r.stmts {
		errs = append(errs, st.Close())
	}
	r.stmts = map[string]driver.Stmt{}
	return errors.Join(errs...)
}

// withRaw runs f on the writer's driver connection. If f leaves the
// connection in a state it cannot vouch for (a failed ROLLBACK), it
// returns an error wrapping driver.ErrBadConn and database/sql discards
// the connection.
func (s *Store) withRaw(ctx context.Context, f func(r *rawConn) error) error {
	return withRawConn(ctx, s.w, &s.raw, f)
}

// withRawConn runs f with raw bound to the driver connection of one of
// db's connections (the single writer's, for the log and the index).
func withRawConn(ctx context.Context, db *sql.DB, raw *rawConn, f func(r *rawConn) error) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		d, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("sqlite: driver connection is %T", dc)
		}
		raw.bind(d)
		return f(raw)
	})
}

// txn runs f inside BEGIN IMMEDIATE … COMMIT. If f or the COMMIT fails
// the transaction is rolled back. SQLite ends a transaction itself on
// some errors (a failed COMMIT's I/O error): then the ROLLBACK reports
// that none is active, which confirms it is over. If the ROLLBACK fails
// otherwise, the state of the connection is unknown: the statements are
// closed and the error wraps driver.ErrBadConn, so that database/sql
// discards the connection (closing it rolls back whatever is still open)
// rather than hand it out again.
func (r *rawConn) txn(ctx context.Context, f func() error) error {
	if err := r.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	err := f()
	if err == nil {
		if err = r.exec(ctx, "COMMIT"); err == nil {
			return nil
		}
		err = fmt.Errorf("commit: %w", err)
	}
	if rerr := r.exec(context.Background(), "ROLLBACK"); rerr != nil && !noTxn(rerr) {
		cerr := r.close()
		return errors.Join(err, fmt.Errorf("rollback: %w", rerr), cerr, driver.ErrBadConn)
	}
	return err
}

// noTxn reports SQLite's answer to a ROLLBACK outside a transaction
// (SQLITE_ERROR, so only its fixed message tells it apart).
func noTxn(err error) bool {
	return strings.Contains(err.Error(), "cannot rollback - no transaction is active")
}
