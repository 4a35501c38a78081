// Package testdb gives tests a fresh, empty database of each dialect berth
// supports: SQLite in the test's temporary directory, and PostgreSQL in a new
// database created on the server named by BERTH_TEST_DATABASE_URL and dropped
// when the test ends.
//
// PostgreSQL tests are skipped when BERTH_TEST_DATABASE_URL is unset or the
// server cannot be reached, unless BERTH_REQUIRE_POSTGRES=1 (CI), in which
// case an unreachable server fails the test.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the PostgreSQL server URL, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const EnvURL = "BERTH_TEST_DATABASE_URL"

// EnvRequire, when "1", turns a missing or unreachable PostgreSQL server
// into a test failure instead of a skip.
const EnvRequire = "BERTH_REQUIRE_POSTGRES"

// Dialects lists the dialects to run storage tests against.
func Dialects() []string { return []string{"sqlite", "postgres"} }

// URL returns a store URL for a fresh, empty database of dialect ("sqlite"
// or "postgres") that lives as long as t. It skips t when the dialect is
// not available here.
func URL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case "sqlite":
		return "sqlite:" + filepath.Join(t.TempDir(), "berth.db")
	case "postgres":
		return postgresURL(t)
	}
	t.Fatalf("testdb: unknown dialect %q", dialect)
	return ""
}

// unavailable skips t, or fails it when PostgreSQL is required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func postgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		unavailable(t, "PostgreSQL tests need %s", EnvURL)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvURL, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "berth_test_" + hex.EncodeToString(b[:])

	if err := adminExec(base, "CREATE DATABASE "+name); err != nil {
		unavailable(t, "PostgreSQL at %s is not usable: %v", redact(u), err)
	}
	t.Cleanup(func() {
		if err := adminExec(base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// adminExec runs one statement on a short-lived connection to the server's
// maintenance database.
func adminExec(base, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 3 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}
