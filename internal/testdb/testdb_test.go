package testdb_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// outcome runs fn with a testing.TB that records a Fatal or Skip instead of
// ending the test.
type outcome struct {
	testing.TB
	fatal, skip string
	cleanups    []func()
}

func (o *outcome) Helper() {}
func (o *outcome) Fatalf(format string, args ...any) {
	o.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (o *outcome) Skipf(format string, args ...any) {
	o.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (o *outcome) Cleanup(f func()) { o.cleanups = append(o.cleanups, f) }

func run(t *testing.T, fn func(tb testing.TB)) *outcome {
	o := &outcome{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(o)
	}()
	<-done
	for i := len(o.cleanups) - 1; i >= 0; i-- {
		o.cleanups[i]()
	}
	return o
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	u := testdb.URL(t, "sqlite")
	path, ok := strings.CutPrefix(u, "sqlite:")
	if !ok || filepath.Base(path) != "berth.db" {
		t.Fatalf("URL = %q", u)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		t.Fatalf("the directory does not exist: %v", err)
	}
	if u2 := testdb.URL(t, "sqlite"); u2 == u {
		t.Fatalf("two calls returned the same database %q", u)
	}
}

func TestUnknownDialect(t *testing.T) {
	t.Parallel()
	if o := run(t, func(tb testing.TB) { testdb.URL(tb, "oracle") }); !strings.Contains(o.fatal, "unknown dialect") {
		t.Fatalf("fatal %q", o.fatal)
	}
}

func TestPostgresUnavailable(t *testing.T) {
	// A port nobody listens on: refused at once.
	const down = "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=1"
	for _, tt := range []struct {
		name, url, require string
		fatal              bool
	}{
		{"Unset", "", "", false},
		{"UnsetRequired", "", "1", true},
		{"Unreachable", down, "", false},
		{"UnreachableRequired", down, "1", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(testdb.EnvURL, tt.url)
			t.Setenv(testdb.EnvRequire, tt.require)
			o := run(t, func(tb testing.TB) { testdb.URL(tb, "postgres") })
			got := o.skip
			if tt.fatal {
				got = o.fatal
			}
			if got == "" {
				t.Fatalf("fatal %q skip %q, want a %s", o.fatal, o.skip, map[bool]string{true: "fatal", false: "skip"}[tt.fatal])
			}
			if strings.Contains(got, "secret") {
				t.Fatalf("the message shows a password: %s", got)
			}
		})
	}
}

// TestPostgres checks that each URL names a new, empty database that is
// dropped when the test ends.
func TestPostgres(t *testing.T) {
	base := os.Getenv(testdb.EnvURL)
	var name string
	t.Run("Use", func(t *testing.T) {
		u := testdb.URL(t, "postgres")
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(pu.Path, "/")
		if !strings.HasPrefix(name, "berth_test_") {
			t.Fatalf("database %q", name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var tables int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
			t.Fatalf("new database has %d tables (%v)", tables, err)
		}
		// A connection left open does not stop the drop.
		leak, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		_ = leak
	})
	if name == "" {
		return // skipped
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still exists after the test (%d, %v)", name, n, err)
	}
}

func TestDialects(t *testing.T) {
	t.Parallel()
	if d := testdb.Dialects(); len(d) != 2 || d[0] != "sqlite" || d[1] != "postgres" {
		t.Fatalf("Dialects() = %v", d)
	}
}
