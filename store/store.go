package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berthhq/berth"
	"github.com/pressly/goose/v3"
)

//go:embed migrations
var migrations embed.FS

// Config configures a store. Zero values take the documented defaults.
type Config struct {
	// URL is "sqlite:PATH" (or a bare path ending in .db) or "postgres://…".
	URL string
	// Synchronous is SQLite's synchronous pragma: "FULL" (default: a
	// committed booking survives power loss) or "NORMAL".
	Synchronous string
	// BusyTimeout is how long SQLite waits for a lock. Defaults to 10s.
	BusyTimeout time.Duration
	// MaxConns bounds the connection pool (readers on SQLite). Defaults to 8.
	MaxConns int
	// Clock tells the store's time. Defaults to the system clock.
	Clock berth.Clock
	// Logger receives migration and retry logs. Defaults to slog.Default().
	Logger *slog.Logger
	// MaxBatch bounds how many Update transactions SQLite commits together
	// (group commit: one COMMIT, so one fsync, for the batch). Defaults to
	// 64; 1 commits each transaction on its own. PostgreSQL ignores it.
	MaxBatch int
}

// DB is a berth.Store.
type DB struct {
	cfg     Config
	dialect dialect
	writer  *sql.DB // SQLite: the single writer connection; PostgreSQL: the pool
	reader  *sql.DB // SQLite: a pool of read-only connections; PostgreSQL: the pool
	wake    chan struct{}
	stop    context.CancelFunc // stops the listener
	commits *groupCommitter    // SQLite: runs Update's transactions in batches; nil on PostgreSQL
	wstmts  *stmtCache         // prepared statements of writer (nil: none)
	rstmts  *stmtCache         // prepared statements of reader (nil: none)
	stats   stats
}

var _ berth.Store = (*DB)(nil)

// dialect is where SQLite and PostgreSQL differ.
type dialect interface {
	name() string
	open(ctx context.Context, cfg Config) (writer, reader *sql.DB, err error)
	gooseDialect() goose.Dialect
	migrationsDir() string
	// classify maps a driver error to a berth error (CONFLICT for unique
	// violations, …) or returns it unchanged.
	classify(err error) error
	// retryable reports whether the whole transaction should run again.
	retryable(err error) bool
	// claimSQL selects and leases due executions: $1 owner, $2 lease until,
	// $3 now, $4 limit; where adds conditions to the selection.
	claimSQL(where string) string
	notify(ctx context.Context, db *sql.DB)
	listen(ctx context.Context, wake chan<- struct{})
	// groupCommit reports whether Update's transactions go through one
	// committer that commits them in batches (SQLite's single writer).
	groupCommit() bool
	// prepare reports whether statements are prepared once per pool and
	// reused (the driver does not cache them itself).
	prepare() bool
}

// Open connects to the database in cfg.URL and migrates it to the newest
// schema.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Clock == nil {
		cfg.Clock = berth.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BusyTimeout == 0 {
		cfg.BusyTimeout = 10 * time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 8
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 64
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("store: MaxBatch must not be negative, got %d", cfg.MaxBatch)
	}
	switch strings.ToUpper(cfg.Synchronous) {
	case "":
		cfg.Synchronous = "FULL"
	case "FULL", "NORMAL", "EXTRA", "OFF":
		cfg.Synchronous = strings.ToUpper(cfg.Synchronous)
	default:
		return nil, fmt.Errorf("store: synchronous must be FULL, NORMAL, EXTRA or OFF, not %q", cfg.Synchronous)
	}
	var d dialect
	switch {
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		d = newPostgres()
	case strings.HasPrefix(cfg.URL, "sqlite:"), strings.HasSuffix(cfg.URL, ".db"):
		d = sqliteDialect{}
	default:
		return nil, fmt.Errorf("store: database URL must start with sqlite: or postgres://, got %q", redact(cfg.URL))
	}
	w, r, err := d.open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	db := &DB{cfg: cfg, dialect: d, writer: w, reader: r, wake: make(chan struct{}, 1), stop: stop}
	if d.prepare() {
		db.wstmts = newStmtCache(w)
		if r != w {
			db.rstmts = newStmtCache(r)
		} else {
			db.rstmts = db.wstmts
		}
	}
	if d.groupCommit() {
		db.commits = newGroupCommitter(db, cfg.MaxBatch)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	go d.listen(lctx, db.wake)
	return db, nil
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.name() }

// Migrate applies the embedded migrations that have not run yet.
func (db *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, db.dialect.migrationsDir())
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(db.dialect.gooseDialect(), db.writer, sub, providerOptions(db.dialect)...)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range res {
		db.cfg.Logger.Info("migration applied", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Close closes the database. Updates still waiting for SQLite's committer
// get an UNAVAILABLE error; the batch in progress finishes first.
func (db *DB) Close() error {
	db.stop()
	if db.commits != nil {
		db.commits.close()
	}
	if db.wstmts != nil {
		db.wstmts.close()
	}
	if db.rstmts != nil && db.rstmts != db.wstmts {
		db.rstmts.close()
	}
	err := db.writer.Close()
	if db.reader != db.writer {
		err = errors.Join(err, db.reader.Close())
	}
	return err
}

// Notify wakes the runners.
func (db *DB) Notify(ctx context.Context) {
	select {
	case db.wake <- struct{}{}:
	default:
	}
	db.dialect.notify(ctx, db.writer)
}

// Wakeups returns the channel Notify signals.
func (db *DB) Wakeups() <-chan struct{} { return db.wake }

// Update runs fn in a read-write transaction, retrying on busy or
// serialization failures.
//
// On SQLite, concurrent Updates share transactions (group commit, see
// groupCommitter): each fn runs in a savepoint of its own, in its caller's
// goroutine, and Update returns after the shared COMMIT. fn must not call
// Update (or Close) itself: it would wait for the transaction it runs in.
func (db *DB) Update(ctx context.Context, fn func(tx berth.Tx) error) error {
	if db.commits != nil {
		return db.run(ctx, func() error { return db.commits.update(ctx, fn) })
	}
	return db.run(ctx, func() error { return db.runOnce(ctx, db.writer, db.wstmts, false, fn) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(ctx context.Context, fn func(tx berth.Tx) error) error {
	return db.run(ctx, func() error { return db.runOnce(ctx, db.reader, db.rstmts, true, fn) })
}

const maxTxAttempts = 10

// retryDelayer is a dialect that chooses how long to wait before running a
// failed transaction again (PostgreSQL waits longer after a lost connection
// than after a conflict).
type retryDelayer interface {
	retryDelay(err error, attempt int) time.Duration
}

// run calls once until it succeeds, fails for good or has been tried
// maxTxAttempts times.
func (db *DB) run(ctx context.Context, once func() error) error {
	var err error
	attempt := 1
	for ; ; attempt++ {
		err = once()
		if err == nil || !db.dialect.retryable(err) || attempt >= maxTxAttempts || ctx.Err() != nil {
			break
		}
		// Back off a little, with jitter, before running fn again.
		d := time.Duration(attempt*attempt) * time.Millisecond * time.Duration(1+time.Now().UnixNano()%3)
		if b, ok := db.dialect.(retryDelayer); ok {
			d = b.retryDelay(err, attempt)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	var ce *commitError
	if err != nil && (db.dialect.retryable(err) || errors.As(err, &ce)) && ctx.Err() == nil {
		// The database's failure, not fn's: the caller gets a code, the
		// operator the cause.
		db.cfg.Logger.Warn("store: transaction failed", "attempts", attempt, "err", err)
	}
	if err != nil && db.dialect.retryable(err) && berth.ErrorCode(err) != berth.EUNAVAILABLE {
		return berth.Errorf(berth.EUNAVAILABLE, "the database is busy; try again")
	}
	return err
}

func (db *DB) runOnce(ctx context.Context, pool *sql.DB, stmts *stmtCache, readOnly bool, fn func(tx berth.Tx) error) (err error) {
	sqlTx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", db.dialect.classify(err))
	}
	t := &tx{ctx: ctx, tx: sqlTx, db: db, now: db.cfg.Clock.Now().UTC(), stmts: stmts}
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = sqlTx.Rollback()
		}
	}()
	if err = fn(t); err != nil {
		return err
	}
	if readOnly {
		return sqlTx.Rollback()
	}
	if err = sqlTx.Commit(); err != nil {
		return &commitError{db.dialect.classify(err)}
	}
	db.stats.commits.Add(1)
	db.stats.updates.Add(1)
	return nil
}

// Stats counts the store's committed work since Open.
type Stats struct {
	// Updates is how many Update calls committed.
	Updates uint64
	// Commits is how many database transactions committed them: fewer
	// than Updates when SQLite's group commit ran several in one.
	Commits uint64
}

type stats struct{ updates, commits atomic.Uint64 }

// Stats returns the store's counters.
func (db *DB) Stats() Stats {
	return Stats{Updates: db.stats.updates.Load(), Commits: db.stats.commits.Load()}
}

// commitError is an error of COMMIT itself: the dialect's retryable tells
// whether the transaction surely did not commit (safe to run again) or its
// outcome is unknown (a connection lost while committing).
type commitError struct{ err error }

func (e *commitError) Error() string { return "store: commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// tx implements berth.Tx.
type tx struct {
	ctx   context.Context
	tx    *sql.Tx
	db    *DB
	now   time.Time
	stmts *stmtCache // nil: statements are not prepared
	// In a group commit's batch: the batch's state, and whether this
	// closure's turn has ended (the *sql.Tx lives on for the next one).
	batch *batchState
	ended atomic.Bool
}

func (t *tx) Now() time.Time { return t.now }

// stmt returns the prepared form of query for this transaction, or nil.
func (t *tx) stmt(query string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	s := t.stmts.get(query)
	if s == nil {
		return nil
	}
	return t.tx.StmtContext(t.ctx, s)
}

func (t *tx) exec(query string, args ...any) (res sql.Result, err error) {
	if err := t.checkTx(); err != nil {
		return nil, err
	}
	if s := t.stmt(query); s != nil {
		res, err = s.ExecContext(t.ctx, args...)
	} else {
		res, err = t.tx.ExecContext(t.ctx, query, args...)
	}
	if err != nil {
		return nil, t.db.dialect.classify(err)
	}
	return res, nil
}

func (t *tx) query(query string, args ...any) (rows *sql.Rows, err error) {
	if err := t.checkTx(); err != nil {
		return nil, err
	}
	if s := t.stmt(query); s != nil {
		rows, err = s.QueryContext(t.ctx, args...)
	} else {
		rows, err = t.tx.QueryContext(t.ctx, query, args...)
	}
	if err != nil {
		return nil, t.db.dialect.classify(err)
	}
	return rows, nil
}

func (t *tx) queryRow(query string, args ...any) scanner {
	if err := t.checkTx(); err != nil {
		return errRow{err}
	}
	if s := t.stmt(query); s != nil {
		return s.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// errRow is a row that could not be read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// affected returns the rows affected by res.
func affected(res sql.Result) int64 {
	n, _ := res.RowsAffected()
	return n
}

// notFound turns sql.ErrNoRows into a NOT_FOUND error naming what.
func (t *tx) notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return berth.Errorf(berth.ENOTFOUND, "%s not found", what)
	}
	return t.db.dialect.classify(err)
}

// micros converts a time to the stored form (0 for the zero time).
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts the stored form back (the zero time for 0).
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullable stores "" as NULL (for optional unique columns).
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// limit clamps a page size to [1, 1000] (default 100).
func limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

func redact(url string) string {
	if i := strings.Index(url, "@"); i > 0 {
		if j := strings.Index(url, "://"); j > 0 && j < i {
			return url[:j+3] + "***" + url[i:]
		}
	}
	return url
}

func providerOptions(d dialect) []goose.ProviderOption {
	if l, ok := d.(interface{ locker() goose.ProviderOption }); ok {
		return []goose.ProviderOption{l.locker()}
	}
	return nil
}
