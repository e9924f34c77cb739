package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// queryValue returns the first column of the first row query returns
// with args (sql.ErrNoRows if none), through a statement prepared once on
// the driver connection (the search index's writes, decision 035). A
// []byte is copied: the driver's may not outlive the rows.
func (r *rawConn) queryValue(ctx context.Context, query string, args ...driver.Value) (driver.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := r.stmt(query)
	if err != nil {
		return nil, err
	}
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return nil, errNoRawStmt
	}
	named := make([]driver.NamedValue, len(args))
	for i, v := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	rows, err := q.QueryContext(context.Background(), named)
	if err != nil {
		return nil, err
	}
	dest := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(dest)
	if err == nil {
		if b, ok := dest[0].([]byte); ok {
			dest[0] = append([]byte(nil), b...)
		}
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, io.EOF):
		return nil, sql.ErrNoRows
	case err != nil:
		return nil, err
	}
	return dest[0], nil
}

// queryInt64Args is queryValue of an integer.
func (r *rawConn) queryInt64Args(ctx context.Context, query string, args ...driver.Value) (int64, error) {
	v, err := r.queryValue(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("sqlite: %q returned %T, want an integer", query, v)
	}
	return n, nil
}

// queryBytes is queryValue of a blob.
func (r *rawConn) queryBytes(ctx context.Context, query string, args ...driver.Value) ([]byte, error) {
	v, err := r.queryValue(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	switch b := v.(type) {
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("sqlite: %q returned %T, want a blob", query, v)
}
