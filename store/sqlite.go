package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthhq/berth"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect is the embedded default: one file, WAL journal, one writer
// connection (so writers queue in Go, not in busy loops) and a pool of
// read-only connections.
type sqliteDialect struct{}

func (sqliteDialect) name() string                { return "sqlite" }
func (sqliteDialect) gooseDialect() goose.Dialect { return goose.DialectSQLite3 }
func (sqliteDialect) migrationsDir() string       { return "migrations/sqlite" }

// SQLitePath returns the file path of a sqlite: URL.
func SQLitePath(u string) string {
	p := strings.TrimPrefix(u, "sqlite:")
	p = strings.TrimPrefix(p, "//")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

func (sqliteDialect) open(ctx context.Context, cfg Config) (*sql.DB, *sql.DB, error) {
	path := SQLitePath(cfg.URL)
	if path == "" {
		return nil, nil, fmt.Errorf("store: sqlite URL has no path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	// busy_timeout first, so that setting WAL waits for other connections.
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(" + cfg.Synchronous + ")",
		"foreign_keys(1)",
		"cache_size(-16000)",
		"temp_store(MEMORY)",
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, nil, err
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxIdleTime(0)
	writer.SetConnMaxLifetime(0)
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	q.Add("_pragma", "query_only(1)")
	reader, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		writer.Close()
		return nil, nil, err
	}
	reader.SetMaxOpenConns(cfg.MaxConns)
	reader.SetMaxIdleConns(cfg.MaxConns)
	return writer, reader, nil
}

func (sqliteDialect) classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &conflictError{berth.Errorf(berth.ECONFLICT, "already exists"), err}
	case sqlite3.SQLITE_CONSTRAINT_CHECK:
		return &conflictError{berth.Errorf(berth.ECONFLICT, "the change would break a rule of the data"), err}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return &conflictError{berth.Errorf(berth.ECONFLICT, "the change refers to something that does not exist or is still in use"), err}
	}
	return err
}

func (sqliteDialect) retryable(err error) bool {
	var ba *batchAbortedError
	if errors.As(err, &ba) {
		return true // nothing of the closure committed
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// The single writer connection serializes claims, so a plain subquery is safe.
func (sqliteDialect) claimSQL(where string) string {
	return `UPDATE executions SET lease_owner = $1, lease_until = $2, version = version + 1
WHERE id IN (SELECT id FROM executions WHERE status = 'RUNNING' AND next_run_at <= $3 AND lease_until <= $3` + where + `
ORDER BY next_run_at LIMIT $4)
RETURNING ` + executionCols

}

func (sqliteDialect) notify(context.Context, *sql.DB)         {}
func (sqliteDialect) listen(context.Context, chan<- struct{}) {}

// conflictError is a berth CONFLICT that keeps the driver error for logs.
type conflictError struct {
	err   *berth.Error
	cause error
}

func (e *conflictError) Error() string   { return e.err.Error() + ": " + e.cause.Error() }
func (e *conflictError) Unwrap() []error { return []error{e.err, e.cause} }

// SQLite has one writer connection: Update's transactions are committed in
// batches, see groupCommitter.
func (sqliteDialect) groupCommit() bool { return true }

// modernc.org/sqlite keeps a prepared statement's compiled program, but
// parses every unprepared query anew.
func (sqliteDialect) prepare() bool { return true }
