package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, as the store uses
	_ "modernc.org/sqlite"             // the "sqlite" driver, as the store uses
)

// Calibration is the physical limit of the database berth runs on: the rate
// of the smallest transaction that books anything, the guarded single-row
// decrement
//
//	BEGIN; UPDATE resources SET available = available - 1 WHERE id = $1 AND available >= 1; COMMIT
//
// on the same kind of database with the same durability settings.
type Calibration struct {
	Dialect     string  `json:"dialect"`
	Synchronous string  `json:"synchronous,omitempty"` // SQLite
	Seconds     float64 `json:"seconds"`               // per measurement
	// TxPerSec is the rate from one goroutine on one row.
	TxPerSec float64 `json:"tx_per_sec"`
	// PostgreSQL only: Conns goroutines on one row (the flash-sale
	// contention) and on one row each (no contention).
	Conns              int     `json:"conns,omitempty"`
	SameRowPerSec      float64 `json:"same_row_tx_per_sec,omitempty"`
	DistinctRowsPerSec float64 `json:"distinct_rows_tx_per_sec,omitempty"`
}

// Calibrate measures the guarded-update rate on the database at dbURL
// (sqlite:PATH or postgres://…) for d per measurement. SQLite runs on a new
// file in dir (the same file system as the data) with the store's pragmas
// and one connection; PostgreSQL in a new table of the same database,
// dropped afterwards, from 1 and then conns connections.
func Calibrate(ctx context.Context, dbURL, synchronous string, d time.Duration, conns int, dir string) (*Calibration, error) {
	if synchronous == "" {
		synchronous = "FULL"
	}
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		return calibratePostgres(ctx, dbURL, d, max(conns, 1))
	case strings.HasPrefix(dbURL, "sqlite:"), strings.HasSuffix(dbURL, ".db"):
		return calibrateSQLite(ctx, dir, strings.ToUpper(synchronous), d)
	}
	return nil, fmt.Errorf("bench: cannot calibrate database %q", dbURL)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SQLiteDSN returns the DSN the store uses for its writer connection on
// path: busy_timeout first, WAL, the synchronous setting, BEGIN IMMEDIATE.
func SQLiteDSN(path, synchronous string, readOnly bool) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(" + synchronous + ")", "foreign_keys(1)",
		"cache_size(-16000)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

const calibrateUpdate = `UPDATE %s SET available = available - 1, updated_at = $2 WHERE id = $1 AND available >= 1`

func calibrateSQLite(ctx context.Context, dir, synchronous string, d time.Duration) (*Calibration, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "calibrate-"+randomHex(4)+".db")
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
	}()
	db, err := sql.Open("sqlite", SQLiteDSN(path, synchronous, false))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the store's single writer
	db.SetMaxIdleConns(1)
	if err := prepareTable(ctx, db, "resources", 1); err != nil {
		return nil, err
	}
	c := &Calibration{Dialect: "sqlite", Synchronous: synchronous, Seconds: d.Seconds()}
	n, err := guardedLoop(ctx, db, "resources", []string{"r0"}, d)
	if err != nil {
		return nil, err
	}
	c.TxPerSec = rate(n, d)
	return c, nil
}

func calibratePostgres(ctx context.Context, dbURL string, d time.Duration, conns int) (*Calibration, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	table := "bench_calibrate_" + randomHex(4)
	if err := prepareTable(ctx, db, table, conns); err != nil {
		return nil, err
	}
	defer func() {
		_, _ = db.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+table)
	}()
	c := &Calibration{Dialect: "postgres", Seconds: d.Seconds(), Conns: conns}
	n, err := guardedLoop(ctx, db, table, []string{"r0"}, d)
	if err != nil {
		return nil, err
	}
	c.TxPerSec = rate(n, d)
	same := make([]string, conns)
	distinct := make([]string, conns)
	for i := range same {
		same[i], distinct[i] = "r0", fmt.Sprintf("r%d", i)
	}
	if n, err = guardedLoop(ctx, db, table, same, d); err != nil {
		return nil, err
	}
	c.SameRowPerSec = rate(n, d)
	if n, err = guardedLoop(ctx, db, table, distinct, d); err != nil {
		return nil, err
	}
	c.DistinctRowsPerSec = rate(n, d)
	return c, nil
}

// prepareTable creates table with rows r0…r(n-1), each with plenty of units.
func prepareTable(ctx context.Context, db *sql.DB, table string, rows int) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+table+` (id TEXT PRIMARY KEY, available BIGINT NOT NULL CHECK (available >= 0),
updated_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("bench: calibration table: %w", err)
	}
	for i := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, available, updated_at) VALUES ($1, $2, 0)`,
			fmt.Sprintf("r%d", i), int64(1)<<40); err != nil {
			return fmt.Errorf("bench: calibration table: %w", err)
		}
	}
	return nil
}

// guardedLoop runs one goroutine per entry of ids, each committing guarded
// decrements of its row in a loop for d after a short warm-up, and returns
// how many committed during d.
func guardedLoop(ctx context.Context, db *sql.DB, table string, ids []string, d time.Duration) (int, error) {
	q := fmt.Sprintf(calibrateUpdate, table)
	warm := min(d/10, 300*time.Millisecond)
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+d)
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for _, id := range ids {
		wg.Go(func() {
			for {
				now := time.Now()
				if now.After(end) || ctx.Err() != nil {
					return
				}
				if err := guardedTx(ctx, db, q, id, now.UnixMicro()); err != nil {
					errs <- err
					return
				}
				if time.Now().After(measureFrom) && !time.Now().After(end) {
					total.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("bench: calibration: %w", err)
	}
	return int(total.Load()), ctx.Err()
}

func guardedTx(ctx context.Context, db *sql.DB, q, id string, now int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, q, id, now)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		_ = tx.Rollback()
		return fmt.Errorf("the guarded update changed %d rows", n)
	}
	return tx.Commit()
}

// guardedOnce runs one guarded-update transaction (for the Go benchmark of
// the same statement): db must hold table with row id.
func guardedOnce(ctx context.Context, db *sql.DB, table, id string) error {
	return guardedTx(ctx, db, fmt.Sprintf(calibrateUpdate, table), id, time.Now().UnixMicro())
}
