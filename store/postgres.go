package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
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
// classified by SQLSTATE (and, for a lost connection, by pgconn's error
// types), never by message text.
//
// A restart or failover of PostgreSQL costs in-flight transactions their
// connection: Update runs them again on a new one when that is safe (the
// failure happened before COMMIT was sent), database/sql replaces dead pool
// connections, and the LISTEN connection reconnects by itself.
type postgresDialect struct {
	cfg *pgx.ConnConfig // parsed from the URL; the listener connects with it
	log *slog.Logger
}

func newPostgres() *postgresDialect { return &postgresDialect{} }

const notifyChannel = "berth_wakeup"

// Defaults applied when the URL does not set them.
const (
	pgConnectTimeout = 10 * time.Second // connect_timeout: a dead host fails fast instead of after the OS's TCP timeout
	pgConnMaxLife    = 30 * time.Minute // connections are recycled, so a pool rebalances after a failover
	pgAppName        = "berth"          // application_name, as pg_stat_activity shows it
)

func (*postgresDialect) name() string                { return "postgres" }
func (*postgresDialect) gooseDialect() goose.Dialect { return goose.DialectPostgres }
func (*postgresDialect) migrationsDir() string       { return "migrations/postgres" }

// locker serializes migrations of replicas starting at once (advisory lock).
func (*postgresDialect) locker() goose.ProviderOption {
	return goose.WithSessionLocker(migrationLock{id: lock.DefaultLockID})
}

// migrationLock is a session-level advisory lock around migrations, under
// goose's lock id (so goose's own tools agree with it). goose's locker tries
// pg_try_advisory_lock every 5 seconds, so replicas starting together waited
// in 5-second steps (eight stores opening a fresh database at once took
// 6-20s in TestPostgresConcurrentMigrations); this one tries every 50ms.
// (Not a blocking pg_advisory_lock: a statement_timeout in the URL would
// cancel the wait behind a long migration.) The server releases the lock if
// the holder's connection ends.
type migrationLock struct{ id int64 }

const (
	migrationLockWait  = 5 * time.Minute // as long as goose's locker tries
	migrationLockRetry = 50 * time.Millisecond
)

func (l migrationLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, migrationLockWait)
	defer cancel()
	for {
		var locked bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", l.id).Scan(&locked); err != nil {
			return fmt.Errorf("store: take the migration lock: %w", err)
		} else if locked {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: another process has held the migration lock for %s: %w", migrationLockWait, ctx.Err())
		case <-time.After(migrationLockRetry):
		}
	}
}

func (l migrationLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var unlocked bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.id).Scan(&unlocked); err != nil {
		return fmt.Errorf("store: release the migration lock: %w", err)
	} else if !unlocked {
		return errors.New("store: the migration lock was not held")
	}
	return nil
}

func (d *postgresDialect) open(ctx context.Context, cfg Config) (*sql.DB, *sql.DB, error) {
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("store: postgres URL: %w", err)
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = pgConnectTimeout
	}
	if _, ok := pc.RuntimeParams["application_name"]; !ok {
		pc.RuntimeParams["application_name"] = pgAppName
	}
	d.cfg, d.log = pc, cfg.Logger
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(pgConnMaxLife)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	return db, db, nil
}

// unavailableError is a berth error saying the database could not do the
// work (UNAVAILABLE, TIMEOUT) that keeps the driver error for logs and for
// retryable.
type unavailableError struct {
	err   *berth.Error
	cause error
}

func (e *unavailableError) Error() string   { return e.err.Error() + ": " + e.cause.Error() }
func (e *unavailableError) Unwrap() []error { return []error{e.err, e.cause} }

func (*postgresDialect) classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return &conflictError{berth.Errorf(berth.ECONFLICT, "already exists"), err}
		case "23514": // check_violation
			return &conflictError{berth.Errorf(berth.ECONFLICT, "the change would break a rule of the data"), err}
		case "23503": // foreign_key_violation
			return &conflictError{berth.Errorf(berth.ECONFLICT, "the change refers to something that does not exist or is still in use"), err}
		case "57014": // query_canceled: statement_timeout (or an operator's pg_cancel_backend)
			return &unavailableError{berth.Errorf(berth.ETIMEOUT, "the database took too long to answer"), err}
		case "55P03": // lock_not_available: lock_timeout
			return &unavailableError{berth.Errorf(berth.EUNAVAILABLE, "the database is busy; try again"), err}
		}
	}
	if connectionLost(err) {
		return &unavailableError{berth.Errorf(berth.EUNAVAILABLE, "the database connection failed; try again"), err}
	}
	return err
}

// retryable reports whether the whole transaction may run again:
//   - 40001 serialization_failure and 40P01 deadlock_detected: the server
//     rolled the transaction back (at any statement, or at COMMIT);
//   - a lost connection before COMMIT: the server rolls back an open
//     transaction whose connection ends, so nothing of it remains;
//   - a lost connection at COMMIT only if the COMMIT was never sent
//     (pgconn.SafeToRetry). Otherwise the transaction may have committed
//     and running it again could apply it twice: the caller gets
//     UNAVAILABLE and decides (idempotency keys, execution versions).
func (*postgresDialect) retryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	if !connectionLost(err) {
		return false
	}
	var ce *commitError
	if errors.As(err, &ce) {
		return pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn)
	}
	return true
}

// retryDelay waits longer after a lost connection (the server may be
// restarting: 50ms doubling to 2s, 9-13s over the attempts Update makes)
// than after a conflict (a few milliseconds, with jitter).
func (*postgresDialect) retryDelay(err error, attempt int) time.Duration {
	jitter := time.Duration(1 + time.Now().UnixNano()%3)
	if connectionLost(err) {
		return min(50*time.Millisecond<<(attempt-1), 2*time.Second) * (4 + jitter) / 5
	}
	return time.Duration(attempt*attempt) * time.Millisecond * jitter
}

// sqlState returns the SQLSTATE of a server error in err's chain, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connectionLost reports whether err means the connection to PostgreSQL
// failed or was ended by the server, rather than that a statement failed.
func connectionLost(err error) bool {
	if err == nil {
		return false
	}
	if code := sqlState(err); code != "" {
		switch {
		case strings.HasPrefix(code, "08"): // connection_exception class
			return true
		case code == "57P01", code == "57P02", code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller gave up or ran out of time: not the database's doing
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		pgconn.SafeToRetry(err) ||
		pgconn.Timeout(err) ||
		errors.As(err, &ce) ||
		errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func (*postgresDialect) claimSQL(where string) string {
	return `UPDATE executions SET lease_owner = $1, lease_until = $2, version = version + 1
WHERE id IN (SELECT id FROM executions WHERE status = 'RUNNING' AND next_run_at <= $3 AND lease_until <= $3` + where + `
ORDER BY next_run_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING ` + executionCols
}

func (*postgresDialect) notify(ctx context.Context, db *sql.DB) {
	_, _ = db.ExecContext(ctx, "SELECT pg_notify('"+notifyChannel+"', '')")
}

// Listener timings.
const (
	listenCheck   = 30 * time.Second // an idle LISTEN connection is pinged this often
	listenPing    = 5 * time.Second  // and given up if the ping takes longer
	listenBackoff = 5 * time.Second  // the longest wait between reconnection attempts
)

// listen keeps one connection LISTENing and forwards notifications to wake,
// reconnecting with backoff when the database goes away. After every
// (re)connection it wakes the runners once: notifications sent while it was
// away are lost, and the work they announced is waiting.
func (d *postgresDialect) listen(ctx context.Context, wake chan<- struct{}) {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	backoff := 100 * time.Millisecond
	lost := false // a connection was lost and not yet re-established
	for ctx.Err() == nil {
		err := d.listenOnce(ctx, func() {
			backoff = 100 * time.Millisecond
			if lost {
				d.log.Info("postgres: LISTEN connection re-established")
				lost = false
			}
			signal()
		}, signal)
		if ctx.Err() != nil {
			return
		}
		if !lost {
			d.log.Warn("postgres: LISTEN connection lost; reconnecting (polling covers the gap)", "err", err)
			lost = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoff)
	}
}

// listenOnce connects, LISTENs (then calls up) and forwards notifications
// until the connection fails.
func (d *postgresDialect) listenOnce(ctx context.Context, up, notified func()) error {
	cfg := d.cfg.Copy()
	cfg.RuntimeParams["application_name"] += "-listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	up()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			notified()
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err):
			return err
		}
		// Quiet for a while: make sure the server is still there (a host
		// that vanished without closing the socket would leave us waiting).
		pctx, cancel := context.WithTimeout(ctx, listenPing)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// PostgreSQL has concurrent writers and groups WAL flushes by itself.
func (*postgresDialect) groupCommit() bool { return false }

// pgx prepares and caches every query per connection by itself
// (QueryExecModeCacheStatement): preparing through database/sql as well
// measured no faster, with 9 more allocations per transaction.
func (*postgresDialect) prepare() bool { return false }
