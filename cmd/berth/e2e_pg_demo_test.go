package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/store"
)

// TestDemoLoadedOnceOnPostgres: replicas started at once with --demo on one
// PostgreSQL database load the demo data once. Each loader checks a marker
// inside its transaction; at READ COMMITTED two loaders would both miss a
// marker the other has not committed yet, and load twice (duplicate flights)
// or fail on the unique usernames. loadDemo first upserts a row that makes
// the others wait for the first loader's commit. (Without it this test
// failed 3 runs out of 3 with six loaders.)
func TestDemoLoadedOnceOnPostgres(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t, "postgres")
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	const loaders = 6
	dbs := make([]*store.DB, loaders)
	for i := range dbs {
		db, err := store.Open(ctx, store.Config{URL: url, MaxConns: 2, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	var wg sync.WaitGroup
	errs := make([]error, loaders)
	for i := range dbs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = loadDemo(ctx, dbs[i], nil, log) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("loader %d: %v", i, err)
		}
	}
	err := dbs[0].View(ctx, func(tx berth.Tx) error {
		fs, err := tx.ListFlights(berth.FlightQuery{Page: berth.Page{Limit: 100}})
		if len(fs) != len(demoFlights) {
			t.Errorf("%d flights, want the %d demo flights once", len(fs), len(demoFlights))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
