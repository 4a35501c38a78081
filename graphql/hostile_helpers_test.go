package graphql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// newHostileStack is setup for the hostile-input tests and fuzz targets:
// any database URL (SQLite or PostgreSQL), any testing.TB, and the saga
// engine running only if runEngine, so that nothing writes to the database
// behind a test's back and digest can tell whether a request wrote. The
// caller sets the stack's t before using it.
func newHostileStack(tb testing.TB, url string, runEngine bool) *stack {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, store.Config{URL: url, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	engine := saga.New(saga.Config{Store: db, Logger: quiet, Poll: 50 * time.Millisecond})
	bus := saga.NewBus(engine)
	loyalty.Subscribe(bus)
	hs := &hookStore{Store: db}
	air := airline.New(airline.Config{Store: hs, Engine: engine, Bus: bus, Payments: payment.NewSimulated(db), Logger: quiet,
		CancelWait: 100 * time.Millisecond,
		StepRetry:  saga.RetryPolicy{MaxAttempts: 2, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	issuer, err := auth.LoadOrCreateIssuer(tb.TempDir(), "berth", "berth")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	if runEngine {
		go func() { done <- engine.Run(ctx) }()
	} else {
		done <- nil
	}
	tb.Cleanup(func() {
		cancel()
		<-done
		_ = db.Close()
	})
	logs := &syncBuffer{}
	h := NewHandler(Config{Airline: air, Store: hs, Issuer: issuer, PasswordParams: cheapPasswords,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	return &stack{h: withTestActor(h), db: db, store: hs, air: air, issuer: issuer, logs: logs}
}

// rawDB is a second, plain database/sql handle on a store's database,
// with a trigger on every table that counts the rows written to it: a
// request that changed no count wrote nothing.
type rawDB struct {
	db      *sql.DB
	dialect string
}

func openRaw(tb testing.TB, url string) *rawDB {
	tb.Helper()
	var r rawDB
	var err error
	if strings.HasPrefix(url, "sqlite:") {
		r.dialect = "sqlite"
		r.db, err = sql.Open("sqlite", "file:"+store.SQLitePath(url)+"?_pragma=busy_timeout(5000)")
	} else {
		r.dialect = "postgres"
		r.db, err = sql.Open("pgx", url)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.db.Close() })
	if err := r.countWrites(); err != nil {
		tb.Fatal(err)
	}
	return &r
}

// countWrites creates the table zz_writes and the triggers that count the
// rows inserted, updated and deleted in every other table.
func (r *rawDB) countWrites() error {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'goose%'`
	if r.dialect == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'goose%'`
	}
	tables, err := r.strings(q)
	if err != nil {
		return err
	}
	stmts := []string{`CREATE TABLE zz_writes (tbl TEXT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0)`}
	if r.dialect == "postgres" {
		stmts = append(stmts, `CREATE FUNCTION zz_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN UPDATE zz_writes SET n = n + 1 WHERE tbl = TG_TABLE_NAME; RETURN NULL; END $$`)
	}
	for _, t := range tables {
		stmts = append(stmts, `INSERT INTO zz_writes (tbl) VALUES ('`+t+`')`)
		if r.dialect == "postgres" {
			stmts = append(stmts, `CREATE TRIGGER zz_writes_`+t+` AFTER INSERT OR UPDATE OR DELETE ON `+t+` FOR EACH ROW EXECUTE FUNCTION zz_count_write()`)
			continue
		}
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, `CREATE TRIGGER zz_writes_`+t+`_`+ev+` AFTER `+ev+` ON `+t+` BEGIN UPDATE zz_writes SET n = n + 1 WHERE tbl = '`+t+`'; END`)
		}
	}
	for _, st := range stmts {
		if _, err := r.db.Exec(st); err != nil {
			return fmt.Errorf("%s: %w", st, err)
		}
	}
	return nil
}

// writes returns the rows written so far, by table.
func (r *rawDB) writes(tb testing.TB) map[string]int64 {
	tb.Helper()
	rows, err := r.db.Query(`SELECT tbl, n FROM zz_writes`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			tb.Fatal(err)
		}
		out[t] = n
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// count returns the number of rows of table.
func (r *rawDB) count(tb testing.TB, table string) int64 {
	tb.Helper()
	var n int64
	if err := r.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func (r *rawDB) strings(q string, args ...any) ([]string, error) {
	rows, err := r.db.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// changed lists the tables written to between two writes snapshots.
func changed(a, b map[string]int64) []string {
	var out []string
	for k, v := range b {
		if a[k] != v {
			out = append(out, fmt.Sprintf("%s: %d rows", k, v-a[k]))
		}
	}
	slices.Sort(out)
	return out
}
