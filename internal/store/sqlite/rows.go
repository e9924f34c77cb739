package sqlite

import (
	"math/bits"
	"strings"
)

// maxChunkRows caps the rows of one multi-row INSERT; chunks are powers
// of two, so a table needs at most nine statement shapes.
const maxChunkRows = 256

// maxRowVars caps the bound variables of one statement (SQLite allows
// 32 766).
const maxRowVars = 4096

// Multi-row INSERTs ("head VALUES (?, …), (?, …), …") through
// statements prepared once per shape. One statement per row cost an exec
// through database/sql and the driver (argument conversion, a goroutine
// watching the context, a VDBE run) for every entry and hash, and parsing
// a new multi-row statement for every batch cost nearly as much; on the
// log's single writer both were a third of Store.Append (decision 018).
// The log's append transaction and the search index's writes run them on
// the driver connection itself (rawConn.insert, decisions 033 and 035).
//
// shape is a multi-row INSERT (head, then rows of cols "?"), or, with
// rows 0, the statement head itself.
type shape struct {
	head       string
	cols, rows int
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
