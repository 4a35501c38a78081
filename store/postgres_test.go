package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// These tests provoke the failures the PostgreSQL dialect must absorb — a
// real serialization failure, a real deadlock, a backend terminated in the
// middle of a transaction, a LISTEN connection that dies — and check that
// Update runs the transaction again to success, or refuses to when running
// it again could apply it twice.

// openPG opens a store on a fresh PostgreSQL database; params are added to
// the URL (run-time parameters such as default_transaction_isolation).
func openPG(t *testing.T, params ...string) (*DB, string) {
	t.Helper()
	u, err := url.Parse(testdb.URL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	db, err := Open(context.Background(), Config{URL: u.String(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u.String()
}

// admin connects to the test database outside the store.
func admin(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func getInt(t *testing.T, tx berth.Tx, key string) int {
	t.Helper()
	b, err := tx.GetKV("test", key)
	if berth.ErrorCode(err) == berth.ENOTFOUND {
		return 0
	} else if err != nil {
		t.Error(err)
		return 0
	}
	n, _ := strconv.Atoi(string(b))
	return n
}

func putInt(tx berth.Tx, key string, n int) error {
	return tx.PutKV("test", key, []byte(strconv.Itoa(n)))
}

// increment adds one to key in its own transaction.
func increment(t *testing.T, db *DB, key string) {
	t.Helper()
	if err := db.Update(context.Background(), func(tx berth.Tx) error { return putInt(tx, key, getInt(t, tx, key)+1) }); err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, db *DB, key string) (n int) {
	t.Helper()
	if err := db.View(context.Background(), func(tx berth.Tx) error { n = getInt(t, tx, key); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgresSerializationFailureIsRetried: under SERIALIZABLE, a
// transaction whose snapshot predates another's committed write to the same
// row fails with 40001 when it writes; Update runs it again on a new
// snapshot, and no increment is lost.
func TestPostgresSerializationFailureIsRetried(t *testing.T) {
	t.Parallel()
	db, _ := openPG(t, "default_transaction_isolation", "serializable")
	ctx := context.Background()
	increment(t, db, "counter") // 1

	var attempts atomic.Int32
	var first error
	err := db.Update(ctx, func(tx berth.Tx) error {
		n := attempts.Add(1)
		v := getInt(t, tx, "counter") // the snapshot is taken here
		if n == 1 {
			increment(t, db, "counter") // another transaction commits 2 meanwhile
		}
		err := putInt(tx, "counter", v+1)
		if n == 1 {
			first = err
		}
		return err
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := sqlState(first); got != "40001" {
		t.Fatalf("first attempt's write: %v (SQLSTATE %q), want a serialization failure 40001", first, got)
	}
	if attempts.Load() != 2 {
		t.Fatalf("%d attempts, want 2", attempts.Load())
	}
	if got := value(t, db, "counter"); got != 3 {
		t.Fatalf("counter = %d, want 3: an increment was lost", got)
	}

	// A transaction that conflicts every time gives up with UNAVAILABLE
	// after maxTxAttempts.
	attempts.Store(0)
	err = db.Update(ctx, func(tx berth.Tx) error {
		attempts.Add(1)
		v := getInt(t, tx, "counter")
		increment(t, db, "counter")
		return putInt(tx, "counter", v+1)
	})
	if berth.ErrorCode(err) != berth.EUNAVAILABLE || attempts.Load() != maxTxAttempts {
		t.Fatalf("always conflicting: %v after %d attempts, want UNAVAILABLE after %d", err, attempts.Load(), maxTxAttempts)
	}
}

// TestPostgresDeadlockIsRetried: two transactions lock two rows in opposite
// orders; PostgreSQL breaks the deadlock by failing one with 40P01 (after
// deadlock_timeout, 1s by default), and Update runs that one again.
func TestPostgresDeadlockIsRetried(t *testing.T) {
	t.Parallel()
	db, _ := openPG(t)
	ctx := context.Background()
	increment(t, db, "a")
	increment(t, db, "b")

	var attempts atomic.Int32
	var mu sync.Mutex
	var errs []error
	holds := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	finished := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	// lockBoth writes first, then — on the first attempt, once the other
	// transaction holds the other row — second. The increments read, then
	// write: the deadlock victim's retry waits for the winner to commit, or
	// under READ COMMITTED it could read a stale value and lose an update
	// (the test's own read-modify-write, not the store's).
	lockBoth := func(first, second string) error {
		var try atomic.Int32
		defer close(finished[first])
		return db.Update(ctx, func(tx berth.Tx) error {
			attempts.Add(1)
			n := try.Add(1)
			if n > 1 {
				<-finished[second]
			}
			if err := putInt(tx, first, getInt(t, tx, first)+1); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return err
			}
			if n == 1 {
				close(holds[first])
				<-holds[second]
			}
			err := putInt(tx, second, getInt(t, tx, second)+1)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return err
		})
	}
	var wg sync.WaitGroup
	results := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); results[0] = lockBoth("a", "b") }()
	go func() { defer wg.Done(); results[1] = lockBoth("b", "a") }()
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if len(errs) != 1 || sqlState(errs[0]) != "40P01" {
		t.Fatalf("errors seen inside the transactions: %v, want one deadlock 40P01", errs)
	}
	if attempts.Load() != 3 {
		t.Fatalf("%d attempts, want 3 (the deadlock victim ran twice)", attempts.Load())
	}
	if a, b := value(t, db, "a"), value(t, db, "b"); a != 3 || b != 3 {
		t.Fatalf("a=%d b=%d, want 3 and 3", a, b)
	}
}

// backendPID returns the server process serving tx.
func backendPID(t *testing.T, btx berth.Tx) int {
	t.Helper()
	var pid int
	if err := btx.(*tx).queryRow("SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// terminate ends a backend as an operator or a server shutdown would
// (FATAL 57P01 admin_shutdown) and waits until it is gone.
func terminate(t *testing.T, conn *pgx.Conn, pid int) {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, ok, err)
	}
}

// TestPostgresLostConnectionIsRetried: the server ends the connection in
// the middle of a transaction (a restart, a failover, an operator). Nothing
// of it committed, so Update runs it again on a new connection.
func TestPostgresLostConnectionIsRetried(t *testing.T) {
	t.Parallel()
	db, dsn := openPG(t)
	ctx := context.Background()
	conn := admin(t, dsn)

	var attempts atomic.Int32
	var first error
	err := db.Update(ctx, func(tx berth.Tx) error {
		n := attempts.Add(1)
		if err := putInt(tx, "x", getInt(t, tx, "x")+1); err != nil {
			return err
		}
		if n == 1 {
			terminate(t, conn, backendPID(t, tx))
			first = putInt(tx, "y", 1)
			return first
		}
		return putInt(tx, "y", 1)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if !connectionLost(first) || berth.ErrorCode(first) != berth.EUNAVAILABLE {
		t.Fatalf("the statement after the termination failed with %v (%T), want a lost connection", first, first)
	}
	if attempts.Load() != 2 {
		t.Fatalf("%d attempts, want 2", attempts.Load())
	}
	if got := value(t, db, "x"); got != 1 {
		t.Fatalf("x = %d, want 1: the first attempt's write must not survive", got)
	}
}

// TestPostgresLostConnectionAtCommit: when the connection dies while COMMIT
// is in flight the outcome is unknown to the client, so Update does not run
// the transaction again (it could apply twice); the caller gets UNAVAILABLE.
// Only if the COMMIT was never sent (pgconn.SafeToRetry) does it run again.
func TestPostgresLostConnectionAtCommit(t *testing.T) {
	t.Parallel()
	db, dsn := openPG(t)
	ctx := context.Background()
	conn := admin(t, dsn)

	var attempts atomic.Int32
	err := db.Update(ctx, func(tx berth.Tx) error {
		n := attempts.Add(1)
		if err := putInt(tx, "x", getInt(t, tx, "x")+1); err != nil {
			return err
		}
		if n == 1 {
			terminate(t, conn, backendPID(t, tx))
		}
		return nil // COMMIT meets the dead connection
	})
	got := value(t, db, "x")
	switch {
	case err != nil && berth.ErrorCode(err) == berth.EUNAVAILABLE && attempts.Load() == 1 && got == 0:
		t.Logf("commit on a dead connection: %v (not retried; here it did not commit)", err)
	case err == nil && attempts.Load() == 2 && got == 1:
		t.Logf("commit was never sent: retried on a new connection")
	default:
		t.Fatalf("Update: %v after %d attempts, x = %d", err, attempts.Load(), got)
	}
	// The pool recovers: the next transaction works.
	increment(t, db, "x")
}

// TestPostgresListenerReconnects kills the LISTEN connection of one store
// and checks that it reconnects, wakes its runners once (notifications sent
// meanwhile were lost) and receives another store's notifications again.
func TestPostgresListenerReconnects(t *testing.T) {
	t.Parallel()
	a, dsn := openPG(t, "application_name", "berth-a")
	// Only a's listener is berth-a-listen.
	if !strings.Contains(dsn, "application_name=berth-a") {
		t.Fatalf("unexpected URL %s", dsn)
	}
	b, err := Open(context.Background(), Config{URL: strings.Replace(dsn, "application_name=berth-a", "application_name=berth-b", 1), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	conn := admin(t, dsn)
	ctx := context.Background()

	listener := func(not int) int {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var pid int
			err := conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = 'berth-a-listen'
				AND datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&pid)
			if err == nil && pid != not {
				return pid
			} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no LISTEN connection of store a")
		return 0
	}
	drain := func() {
		for {
			select {
			case <-a.Wakeups():
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}
	woken := func(what string) {
		t.Helper()
		select {
		case <-a.Wakeups():
		case <-time.After(5 * time.Second):
			t.Fatalf("store a was not woken: %s", what)
		}
	}

	pid := listener(0)
	drain()
	b.Notify(ctx)
	woken("by b's notification")

	terminate(t, conn, pid)
	listener(pid)
	woken("after its listener reconnected")
	drain()
	b.Notify(ctx)
	woken("by b's notification after the reconnection")
}

// TestPostgresRetryable checks the classification without a server.
func TestPostgresRetryable(t *testing.T) {
	d := newPostgres()
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code} }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{pg("40001"), true},
		{pg("40P01"), true},
		{fmt.Errorf("store: begin: %w", pg("40001")), true},
		{&commitError{pg("40001")}, true}, // SERIALIZABLE fails at COMMIT: rolled back
		{pg("23505"), false},
		{d.classify(pg("23505")), false},
		{pg("57014"), false}, // query_canceled (statement_timeout): not a lost connection
		{pg("55P03"), false}, // lock_not_available (lock_timeout): waiting again would add to the pile
		{pg("57P01"), true},  // admin_shutdown before COMMIT
		{pg("08006"), true},
		{d.classify(pg("57P01")), true},
		{&commitError{d.classify(pg("57P01"))}, false}, // the COMMIT may have happened
		{&commitError{io.ErrUnexpectedEOF}, false},
		{&commitError{pgconn.ErrConnClosed}, false},
		{driver.ErrBadConn, true},
		{&commitError{driver.ErrBadConn}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{errors.New("something else"), false},
		{berth.Errorf(berth.ESOLDOUT, "sold out"), false},
	} {
		if got := d.retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	for sqlstate, want := range map[string]string{
		"57P01": berth.EUNAVAILABLE, "08006": berth.EUNAVAILABLE, "57014": berth.ETIMEOUT, "55P03": berth.EUNAVAILABLE,
		"23505": berth.ECONFLICT, "23514": berth.ECONFLICT, "23503": berth.ECONFLICT, "40001": berth.EINTERNAL,
	} {
		if code := berth.ErrorCode(d.classify(pg(sqlstate))); code != want {
			t.Errorf("SQLSTATE %s is %s, want %s", sqlstate, code, want)
		}
	}
	if code := berth.ErrorCode(d.classify(&commitError{io.ErrUnexpectedEOF})); code != berth.EUNAVAILABLE {
		t.Errorf("a connection lost at COMMIT is %s, want UNAVAILABLE", code)
	}
}

// TestPostgresConcurrentMigrations opens eight stores on a fresh database at
// once, as replicas starting together do: one applies the migrations under
// the advisory lock, the others wait for it and find nothing to do. With
// goose's own locker (a try every 5 seconds) this took 6–20 s here when run
// with the package's other tests; with migrationLock (every 50ms) 1.3–1.9 s.
func TestPostgresConcurrentMigrations(t *testing.T) {
	t.Parallel()
	dsn := testdb.URL(t, "postgres")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(context.Background(), Config{URL: dsn, MaxConns: 2, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				err = db.Update(context.Background(), func(tx berth.Tx) error { return putInt(tx, "opened", i) })
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("eight concurrent Opens took %s", d)
	}
}

// TestPostgresURLRuntimeParams: settings in the URL's query (statement_timeout,
// lock_timeout, …) reach the server as run-time parameters of every
// connection, as docs/OPERATIONS.md tells operators.
func TestPostgresURLRuntimeParams(t *testing.T) {
	t.Parallel()
	db, _ := openPG(t, "statement_timeout", "30s", "idle_in_transaction_session_timeout", "60000")
	var st, idle, app string
	err := db.View(context.Background(), func(btx berth.Tx) error {
		return btx.(*tx).queryRow("SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'), current_setting('application_name')").Scan(&st, &idle, &app)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st != "30s" || idle != "1min" || app != "berth" {
		t.Fatalf("statement_timeout %q, idle_in_transaction_session_timeout %q, application_name %q", st, idle, app)
	}
}
