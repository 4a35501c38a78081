package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berthhq/berth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// postgresDialect serves several replicas sharing one database: claims use
// FOR UPDATE SKIP LOCKED, wake-ups travel by LISTEN/NOTIFY, and errors are
// classified by SQLSTATE.
type postgresDialect struct {
	url string
}

func newPostgres() *postgresDialect { return &postgresDialect{} }

const notifyChannel = "berth_wakeup"

func (*postgresDialect) name() string                { return "postgres" }
func (*postgresDialect) gooseDialect() goose.Dialect { return goose.DialectPostgres }
func (*postgresDialect) migrationsDir() string       { return "migrations/postgres" }

// locker serializes migrations of replicas starting at once (advisory lock).
func (*postgresDialect) locker() goose.ProviderOption {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		panic(err) // only fails on invalid options
	}
	return goose.WithSessionLocker(l)
}

func (d *postgresDialect) open(ctx context.Context, cfg Config) (*sql.DB, *sql.DB, error) {
	d.url = cfg.URL
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("store: postgres URL: %w", err)
	}
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	return db, db, nil
}

func (*postgresDialect) classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		return &conflictError{berth.Errorf(berth.ECONFLICT, "already exists"), err}
	case "23514": // check_violation
		return &conflictError{berth.Errorf(berth.ECONFLICT, "the change would break a rule of the data"), err}
	case "23503": // foreign_key_violation
		return &conflictError{berth.Errorf(berth.ECONFLICT, "the change refers to something that does not exist or is still in use"), err}
	}
	return err
}

func (*postgresDialect) retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

func (*postgresDialect) claimSQL() string {
	return `UPDATE executions SET lease_owner = $1, lease_until = $2, version = version + 1
WHERE id IN (SELECT id FROM executions WHERE status = 'RUNNING' AND next_run_at <= $3 AND lease_until <= $3
ORDER BY next_run_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING ` + executionCols
}

func (*postgresDialect) notify(ctx context.Context, db *sql.DB) {
	_, _ = db.ExecContext(ctx, "SELECT pg_notify('"+notifyChannel+"', '')")
}

// listen keeps one connection LISTENing and forwards notifications to wake,
// reconnecting with backoff when the database goes away.
func (d *postgresDialect) listen(ctx context.Context, wake chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, d.url)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			for err == nil {
				backoff = 100 * time.Millisecond
				_, err = conn.WaitForNotification(ctx)
				if err == nil {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
			conn.Close(context.WithoutCancel(ctx))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
