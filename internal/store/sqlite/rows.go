package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
)

// maxChunkRows caps the rows of one multi-row INSERT; chunks are powers
// of two, so a table needs at most nine statement shapes.
const maxChunkRows = 256

// maxRowVars caps the bound variables of one statement (SQLite allows
// 32 766).
const maxRowVars = 4096

// inserts writes rows with multi-row INSERTs ("head VALUES (?, …), (?,
// …), …") through statements prepared once per shape on a
// single-connection database. One statement per row cost an exec through
// database/sql and the driver (argument conversion, a goroutine watching
// the context, a VDBE run) for every entry and hash, and parsing a new
// multi-row statement for every batch cost nearly as much; on the log's
// single writer both were a third of Store.Append (decision 018). The
// search index writes through it; the log's append transaction runs on
// the driver connection itself (rawConn, decision 033).
type inserts struct {
	db     *sql.DB // its one connection is the one transactions use
	mu     sync.Mutex
	shapes map[shape]*prepared
	missed []shape // shapes a transaction parsed itself, to prepare
}

// shape is a multi-row INSERT (head, then rows of cols "?"), or, with
// rows 0, the statement head itself.
type shape struct {
	head       string
	cols, rows int
}

type prepared struct {
	query string
	stmt  *sql.Stmt // nil until prepared on db
}

func newInserts(db *sql.DB) *inserts {
	return &inserts{db: db, shapes: map[shape]*prepared{}}
}

// insert inserts n rows of cols values each in tx; row appends the
// values of row i to args.
func (c *inserts) insert(ctx context.Context, tx *sql.Tx, head string, cols, n int, row func(i int, args []any) []any) error {
	args := make([]any, 0, min(n, chunkPer(cols))*cols)
	return chunkRows(cols, n, func(lo, rows int) error {
		args = args[:0]
		for i := lo; i < lo+rows; i++ {
			args = row(i, args)
		}
		if len(args) != rows*cols {
			return fmt.Errorf("sqlite: insert: %d values for %d rows of %d columns", len(args), rows, cols)
		}
		return c.exec(ctx, tx, shape{head, cols, rows}, args)
	})
}

// chunkPer is the most rows of cols values one INSERT of chunkRows holds.
func chunkPer(cols int) int {
	return min(maxChunkRows, 1<<(bits.Len(uint(max(1, maxRowVars/cols)))-1))
}

// chunkRows splits n rows of cols values each into multi-row INSERTs of
// power-of-two row counts, each within SQLite's bound on variables (at
// most nine statement shapes per table, so each can be prepared once),
// and calls insert for each chunk [lo, lo+rows) in order.
func chunkRows(cols, n int, insert func(lo, rows int) error) error {
	per := chunkPer(cols)
	for lo := 0; lo < n; {
		rows := min(per, 1<<(bits.Len(uint(n-lo))-1))
		if err := insert(lo, rows); err != nil {
			return err
		}
		lo += rows
	}
	return nil
}

func (c *inserts) exec(ctx context.Context, tx *sql.Tx, s shape, args []any) error {
	stmt, query := c.lookup(s)
	var err error
	if stmt != nil {
		// Prepared on the same (only) connection: database/sql reuses
		// the driver statement inside the transaction.
		_, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	} else {
		_, err = tx.ExecContext(ctx, query, args...)
	}
	return err
}

// lookup returns the prepared statement of s, or nil and its text (then
// it is prepared after the transaction: prepareMissed).
func (c *inserts) lookup(s shape) (*sql.Stmt, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.shapes[s]
	if p == nil {
		p = &prepared{query: s.query()}
		c.shapes[s] = p
		c.missed = append(c.missed, s)
	}
	return p.stmt, p.query
}

// prepareMissed prepares the shapes transactions met for the first time.
// Call it with no transaction open on db (it needs the connection).
func (c *inserts) prepareMissed(ctx context.Context) {
	c.mu.Lock()
	missed := c.missed
	c.missed = nil
	c.mu.Unlock()
	for _, s := range missed {
		c.mu.Lock()
		p := c.shapes[s]
		c.mu.Unlock()
		stmt, err := c.db.PrepareContext(ctx, p.query)
		if err != nil {
			continue // this shape is parsed per use from now on
		}
		c.mu.Lock()
		p.stmt = stmt
		c.mu.Unlock()
	}
}

// close closes the prepared statements (before db closes).
func (c *inserts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, p := range c.shapes {
		if p.stmt != nil {
			errs = append(errs, p.stmt.Close())
		}
	}
	c.shapes = map[shape]*prepared{}
	return errors.Join(errs...)
}

func (s shape) query() string {
	if s.rows == 0 {
		return s.head
	}
	var sb strings.Builder
	sb.WriteString(s.head)
	sb.WriteString(" VALUES ")
	for i := range s.rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for c := range s.cols {
			if c > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('?')
		}
		sb.WriteByte(')')
	}
	return sb.String()
}
