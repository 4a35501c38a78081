package store

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
)

// The group committer's batches, built by hand so that their make-up does
// not depend on timing: the committer loop stays idle while the test calls
// commit with a batch of its own.

func openSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{URL: testdb.URL(t, "sqlite"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// outcome is what one request of a hand-made batch got.
type outcome struct {
	err      error
	panicked any
}

// runBatch commits fns as one batch, each fn called as Update would call it
// (its own goroutine, its own ctx), and returns their outcomes.
func runBatch(db *DB, ctxs []context.Context, fns []func(berth.Tx) error) []outcome {
	reqs := make([]*writeReq, len(fns))
	out := make([]outcome, len(fns))
	done := make(chan struct{})
	for i, fn := range fns {
		ctx := context.Background()
		if ctxs != nil && ctxs[i] != nil {
			ctx = ctxs[i]
		}
		reqs[i] = newWriteReq(ctx, fn)
		go func() {
			defer func() {
				out[i].panicked = recover()
				done <- struct{}{}
			}()
			out[i].err = reqs[i].wait()
		}()
	}
	db.commits.commit(reqs)
	for range fns {
		<-done
	}
	return out
}

func getKV(t *testing.T, db *DB, key string) (string, bool) {
	t.Helper()
	var v []byte
	err := db.View(context.Background(), func(tx berth.Tx) (err error) { v, err = tx.GetKV("batch", key); return err })
	if berth.ErrorCode(err) == berth.ENOTFOUND {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v), true
}

func put(key string) func(berth.Tx) error {
	return func(tx berth.Tx) error { return tx.PutKV("batch", key, []byte(key)) }
}

func TestGroupCommitBatch(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	errFail := errors.New("fail")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	selfCancel, cancelSelf := context.WithCancel(context.Background())
	defer cancelSelf()
	if err := db.Update(context.Background(), func(tx berth.Tx) error {
		return tx.CreateAPIKey(&berth.APIKey{ID: "dup", Name: "d", SecretHash: "h"})
	}); err != nil {
		t.Fatal(err)
	}
	var sawEarlier string
	var nows []int64
	fns := []func(berth.Tx) error{
		put("ok1"),
		func(tx berth.Tx) error { _ = tx.PutKV("batch", "err", nil); return errFail },
		func(tx berth.Tx) error { _ = tx.PutKV("batch", "panic", nil); panic("boom") },
		put("cancelled"),
		func(tx berth.Tx) error { // a failed statement does not doom the others
			if err := tx.PutKV("batch", "conflict", nil); err != nil {
				return err
			}
			return tx.CreateAPIKey(&berth.APIKey{ID: "dup", Name: "d", SecretHash: "h"})
		},
		func(tx berth.Tx) error { // its ctx ends between two statements
			if err := tx.PutKV("batch", "self-cancel", nil); err != nil {
				return err
			}
			cancelSelf()
			return tx.PutKV("batch", "self-cancel-2", nil)
		},
		func(tx berth.Tx) error { // sees what the earlier closures of its batch wrote
			v, err := tx.GetKV("batch", "ok1")
			sawEarlier = string(v)
			if err != nil {
				return err
			}
			if _, err := tx.GetKV("batch", "err"); berth.ErrorCode(err) != berth.ENOTFOUND {
				t.Errorf("a failed closure's write is visible to the next: %v", err)
			}
			nows = append(nows, tx.Now().UnixNano())
			return tx.PutKV("batch", "ok2", nil)
		},
	}
	ctxs := []context.Context{3: cancelled, 5: selfCancel, 6: nil}
	got := runBatch(db, ctxs, fns)

	if got[0].err != nil || got[6].err != nil {
		t.Fatalf("successful closures: %v, %v", got[0].err, got[6].err)
	}
	if !errors.Is(got[1].err, errFail) {
		t.Errorf("failing closure: %v, want its own error", got[1].err)
	}
	if got[2].panicked != "boom" {
		t.Errorf("panicking closure: recovered %v, err %v; want the panic in the caller", got[2].panicked, got[2].err)
	}
	if !errors.Is(got[3].err, context.Canceled) {
		t.Errorf("cancelled closure: %v, want context.Canceled", got[3].err)
	}
	if berth.ErrorCode(got[4].err) != berth.ECONFLICT {
		t.Errorf("conflicting closure: %v, want CONFLICT", got[4].err)
	}
	if !errors.Is(got[5].err, context.Canceled) {
		t.Errorf("self-cancelling closure: %v, want context.Canceled", got[5].err)
	}
	if sawEarlier != "ok1" {
		t.Errorf("the later closure read %q, want the earlier closure's write", sawEarlier)
	}
	for _, k := range []string{"ok1", "ok2"} {
		if _, ok := getKV(t, db, k); !ok {
			t.Errorf("%s was not committed", k)
		}
	}
	for _, k := range []string{"err", "panic", "cancelled", "conflict", "self-cancel", "self-cancel-2"} {
		if _, ok := getKV(t, db, k); ok {
			t.Errorf("%s was committed by a closure that failed", k)
		}
	}
	// The store still works.
	if err := db.Update(context.Background(), put("after")); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitWholeRollback: when a closure makes SQLite roll back the
// whole transaction (here a plain ROLLBACK; in life an interrupted write or
// a full disk), nothing of the batch commits, no later statement runs in
// autocommit mode, and the others are told to run again.
func TestGroupCommitWholeRollback(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	var afterRollback error
	got := runBatch(db, nil, []func(berth.Tx) error{
		put("first"),
		func(btx berth.Tx) error {
			if _, err := btx.(*tx).exec("ROLLBACK"); err != nil {
				return err
			}
			afterRollback = btx.PutKV("batch", "autocommit", nil)
			return nil // swallows the error
		},
		put("last"),
	})
	if afterRollback == nil {
		t.Errorf("a statement after the rollback ran")
	}
	for i, o := range got {
		var ba *batchAbortedError
		if !errors.As(o.err, &ba) || !db.dialect.retryable(o.err) {
			t.Errorf("closure %d: %v, want a retryable batchAbortedError", i, o.err)
		}
	}
	for _, k := range []string{"first", "autocommit", "last"} {
		if _, ok := getKV(t, db, k); ok {
			t.Errorf("%s was committed", k)
		}
	}
	// Through Update the innocent closures run again and commit.
	if err := db.Update(context.Background(), put("first")); err != nil {
		t.Fatal(err)
	}
	if _, ok := getKV(t, db, "first"); !ok {
		t.Fatalf("first was not committed on its second run")
	}
}

// TestGroupCommitSingleFailure: a batch of one closure has no savepoint;
// its failure rolls back the plain transaction.
func TestGroupCommitSingleFailure(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	got := runBatch(db, nil, []func(berth.Tx) error{
		func(tx berth.Tx) error { _ = tx.PutKV("batch", "alone", nil); return errors.New("no") },
	})
	if got[0].err == nil || got[0].err.Error() != "no" {
		t.Fatalf("got %v, want its own error", got[0].err)
	}
	if _, ok := getKV(t, db, "alone"); ok {
		t.Fatalf("the failed closure's write was committed")
	}
}

// TestCloseAnswersWaiting: Close stops the committer; an Update after it
// fails instead of waiting for ever.
func TestCloseAnswersWaiting(t *testing.T) {
	t.Parallel()
	db, err := Open(context.Background(), Config{URL: testdb.URL(t, "sqlite"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	first := make(chan error, 1)
	entered := make(chan struct{})
	go func() {
		first <- db.Update(context.Background(), func(tx berth.Tx) error {
			close(entered)
			<-release
			return tx.PutKV("batch", "in-flight", nil)
		})
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	// Close waits for the batch in progress, which waits for release.
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the batch in progress: %v, want it to commit", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), put("late")); berth.ErrorCode(err) != berth.EUNAVAILABLE {
		t.Fatalf("Update after Close: %v, want UNAVAILABLE", err)
	}
}
