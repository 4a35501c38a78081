package bench

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthhq/berth/internal/testdb"
)

// BenchmarkRawGuardedUpdate is the calibration's transaction as a Go
// benchmark: BEGIN; the guarded single-row UPDATE; COMMIT, on SQLite with
// berth's writer settings (WAL, synchronous=FULL, one connection) and, with
// BERTH_TEST_DATABASE_URL, PostgreSQL. The ceiling every booking path is
// measured against.
func BenchmarkRawGuardedUpdate(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			u := testdb.URL(b, dialect)
			var db *sql.DB
			var err error
			if dialect == "sqlite" {
				path := filepath.Join(b.TempDir(), "raw.db")
				db, err = sql.Open("sqlite", SQLiteDSN(path, "FULL", false))
				if err == nil {
					db.SetMaxOpenConns(1)
				}
			} else {
				db, err = sql.Open("pgx", strings.TrimPrefix(u, "sqlite:"))
			}
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := prepareTable(ctx, db, "resources", 1); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := guardedOnce(ctx, db, "resources", "r0"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
