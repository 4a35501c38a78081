package store_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/store/storetest"
)

// quiet drops the stores' migration logs.
var quiet = slog.New(slog.DiscardHandler)

// open opens a store on a fresh database of dialect, closed when t ends.
func open(t *testing.T, dialect string, clock berth.Clock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: testdb.URL(t, dialect), Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			storetest.Exercise(t, func(t *testing.T, c berth.Clock) berth.Store {
				db := open(t, d, c)
				if db.Dialect() != d {
					t.Fatalf("Dialect() = %q, want %q", db.Dialect(), d)
				}
				return db
			})
		})
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  store.Config
		want string
	}{
		{"Scheme", store.Config{URL: "mysql://root@localhost/berth"}, "must start with sqlite: or postgres://"},
		{"Empty", store.Config{URL: ""}, "must start with sqlite: or postgres://"},
		{"PasswordRedacted", store.Config{URL: "mongodb://user:secret@host/db"}, "mongodb://***@host/db"},
		{"Synchronous", store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "x.db"), Synchronous: "SOMETIMES"}, "synchronous must be"},
		{"NoPath", store.Config{URL: "sqlite:"}, "no path"},
		{"PostgresURL", store.Config{URL: "postgres://host:notaport/db"}, "postgres"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := store.Open(context.Background(), tt.cfg)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tt.cfg.URL)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%q) = %v, want an error mentioning %q", tt.cfg.URL, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// TestMigrationsIdempotent opens the same database twice: the second open
// finds the schema current and the data intact.
func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := testdb.URL(t, d)
			first, err := store.Open(ctx, store.Config{URL: url, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Update(ctx, func(tx berth.Tx) error { return tx.PutKV("ns", "k", []byte("kept")) }); err != nil {
				t.Fatal(err)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			second, err := store.Open(ctx, store.Config{URL: url, Logger: quiet})
			if err != nil {
				t.Fatalf("second Open: %v", err)
			}
			defer second.Close()
			if err := second.Migrate(ctx); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
			var v []byte
			if err := second.View(ctx, func(tx berth.Tx) (err error) { v, err = tx.GetKV("ns", "k"); return err }); err != nil || string(v) != "kept" {
				t.Fatalf("after reopening: %q, %v", v, err)
			}
		})
	}
}

// TestUniqueViolationIsConflict checks each dialect's error classification
// on a constraint the store does not pre-check.
func TestUniqueViolationIsConflict(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t, d, nil)
			k := &berth.APIKey{ID: "key-1", Name: "a", SecretHash: "h"}
			if err := db.Update(ctx, func(tx berth.Tx) error { return tx.CreateAPIKey(k) }); err != nil {
				t.Fatal(err)
			}
			err := db.Update(ctx, func(tx berth.Tx) error {
				return tx.CreateAPIKey(&berth.APIKey{ID: "key-1", Name: "b", SecretHash: "h"})
			})
			if berth.ErrorCode(err) != berth.ECONFLICT || berth.ErrorMessage(err) != "already exists" {
				t.Fatalf("duplicate primary key: %v (code %q), want CONFLICT already exists", err, berth.ErrorCode(err))
			}
			if !berth.IsBusiness(err) {
				t.Fatalf("a conflict is not a business error")
			}
		})
	}
}

func TestSQLitePath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ url, want string }{
		{"sqlite:/var/lib/berth/berth.db", "/var/lib/berth/berth.db"},
		{"sqlite:///var/lib/berth/berth.db", "/var/lib/berth/berth.db"},
		{"sqlite:data/berth.db?cache=shared", "data/berth.db"},
		{"berth.db", "berth.db"},
	} {
		if got := store.SQLitePath(tt.url); got != tt.want {
			t.Errorf("SQLitePath(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

// TestBareDBPath opens a store by a path ending in .db, without a scheme.
func TestBareDBPath(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), store.Config{URL: filepath.Join(t.TempDir(), "bare.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != "sqlite" {
		t.Fatalf("Dialect() = %q", db.Dialect())
	}
}
