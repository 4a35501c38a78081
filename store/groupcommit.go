package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/berthhq/berth"
	"modernc.org/sqlite"
)

// groupCommitter runs SQLite's read-write transactions on the one writer
// connection, several to a COMMIT: with synchronous=FULL every COMMIT costs
// an fsync, and the fsync, not the SQL, bounds how many transactions per
// second one writer can do.
//
// Update hands its closure to the committer and waits. The committer takes
// the first waiting request and every other one already waiting (up to
// maxBatch), opens one transaction (BEGIN IMMEDIATE) and gives each closure
// its turn, one after another, inside its own savepoint:
//
//	BEGIN IMMEDIATE
//	SAVEPOINT berth_batch; fn1; RELEASE berth_batch
//	SAVEPOINT berth_batch; fn2 fails; ROLLBACK TO berth_batch; RELEASE berth_batch
//	…
//	COMMIT
//
// A closure that fails or panics leaves nothing behind (ROLLBACK TO) and
// the others carry on. Every caller learns its outcome only after the
// COMMIT, failures included: a closure may have read what an earlier one of
// its batch wrote, so its answer, even a business error, holds only if that
// earlier write committed. If the COMMIT fails, every closure that ran gets
// the COMMIT's error. If SQLite rolls the whole transaction back by itself
// (an interrupted write, a full disk: sqlite3's rollback hook tells), no
// statement runs any more, nothing commits, and the other closures of the
// batch get a retryable error: Update runs them again in a later batch.
//
// The outcome is the same as if the successful closures had run one after
// another, each in its own transaction, in batch order; and the failed ones
// had run at their place in that order and rolled back.
//
// Each closure runs in the committer's goroutine with its caller's ctx and
// its own tx.Now(); a panic is logged with its stack and panicked again
// where Update was called. An Update called from inside a closure waits for the committer,
// which waits for the closure: a deadlock, as it always was with one writer
// connection (it ends, with ctx's error, if ctx ends).
type groupCommitter struct {
	db       *DB
	maxBatch int
	reqs     chan *writeReq
	quit     chan struct{} // closed by close
	done     chan struct{} // closed when loop has returned
	once     sync.Once
}

// writeReq is one Update call waiting for the committer.
type writeReq struct {
	ctx context.Context
	fn  func(tx berth.Tx) error
	// in carries the final answer to the caller.
	in chan writeMsg
}

// writeMsg is the final answer to an Update.
type writeMsg struct {
	err      error
	panicked bool
	panicVal any // the closure's panic, panicked again in the caller
}

type fnOutcome struct {
	err      error
	panicked bool
	panicVal any
}

// reply is the answer that reports the closure's own outcome.
func (o fnOutcome) reply() writeMsg {
	return writeMsg(o)
}

// errClosed answers Updates made after (or queued at) Close.
var errClosed = berth.Errorf(berth.EUNAVAILABLE, "the database is closed")

// batchAbortedError is returned to a closure whose batch did not commit for
// a reason other than the closure itself (another closure's statement made
// SQLite roll back the whole transaction): nothing of it committed, so
// Update runs it again.
type batchAbortedError struct{ cause error }

func (e *batchAbortedError) Error() string {
	return "store: the batched transaction was rolled back: " + e.cause.Error()
}
func (e *batchAbortedError) Unwrap() error { return e.cause }

// errTxRolledBack is the cause when SQLite rolled the transaction back.
var errTxRolledBack = errors.New("sqlite rolled the transaction back")

// errClosureFailed is the cause when the batch's only closure failed.
var errClosureFailed = errors.New("the transaction function failed")

func newGroupCommitter(db *DB, maxBatch int) *groupCommitter {
	c := &groupCommitter{db: db, maxBatch: maxBatch, reqs: make(chan *writeReq),
		quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// close stops the committer after the batch in progress; Updates waiting
// for it get errClosed.
func (c *groupCommitter) close() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}

// update runs fn in the next batch and returns its outcome. It re-panics
// fn's panic.
func (c *groupCommitter) update(ctx context.Context, fn func(tx berth.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := newWriteReq(ctx, fn)
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return errClosed
	}
	return r.wait()
}

// wait returns the final answer, or panics again with the closure's panic
// once its writes are rolled back. From the hand-over on, the committer
// owes r an answer, whatever ctx does.
func (r *writeReq) wait() error {
	m := <-r.in
	if m.panicked {
		panic(m.panicVal)
	}
	return m.err
}

func newWriteReq(ctx context.Context, fn func(tx berth.Tx) error) *writeReq {
	return &writeReq{ctx: ctx, fn: fn, in: make(chan writeMsg, 1)}
}

// run calls fn in tx, in the committer's goroutine. Handing each closure
// to its caller's goroutine and back would cost two goroutine switches per
// transaction, and under load each waits for the scheduler while the one
// writer, the bottleneck, sits idle (measured: ~30% fewer bookings/s). A
// panic is logged with its stack here and panicked again in the caller.
func (c *groupCommitter) run(r *writeReq, t *tx) (o fnOutcome) {
	defer func() {
		if p := recover(); p != nil {
			c.db.cfg.Logger.Error("store: a transaction function panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			o = fnOutcome{panicked: true, panicVal: p}
		}
	}()
	return fnOutcome{err: r.fn(t)}
}

func (c *groupCommitter) loop() {
	defer close(c.done)
	batch := make([]*writeReq, 0, c.maxBatch)
	for {
		select {
		case <-c.quit:
			c.drain()
			return
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.commit(batch)
		clear(batch)
	}
}

// drain answers the Updates still handing in requests.
func (c *groupCommitter) drain() {
	for {
		select {
		case r := <-c.reqs:
			r.in <- writeMsg{err: errClosed}
		default:
			return
		}
	}
}

// rollbackHooker is modernc.org/sqlite's connection.
type rollbackHooker interface {
	RegisterRollbackHook(sqlite.RollbackHookFn)
}

// batchState is shared by the txs of one batch.
type batchState struct {
	// rolledBack is set (by sqlite3's rollback hook, synchronously inside
	// the failing statement) when SQLite rolled the whole transaction back:
	// from then on no statement may run, or it would run in autocommit
	// mode and commit on its own.
	rolledBack atomic.Bool
}

// answer is what a request will be told when the batch ends.
type answer struct {
	r       *writeReq
	outcome fnOutcome
}

// commit runs one batch.
func (c *groupCommitter) commit(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.in <- writeMsg{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background()
	fail := func(rs []*writeReq, err error) {
		for _, r := range rs {
			r.in <- writeMsg{err: err}
		}
	}
	conn, err := c.db.writer.Conn(ctx)
	if err != nil {
		fail(live, fmt.Errorf("store: begin: %w", c.db.dialect.classify(err)))
		return
	}
	defer conn.Close()
	bs := &batchState{}
	_ = conn.Raw(func(dc any) error {
		if h, ok := dc.(rollbackHooker); ok {
			h.RegisterRollbackHook(func() { bs.rolledBack.Store(true) })
		}
		return nil
	})
	sqlTx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		fail(live, fmt.Errorf("store: begin: %w", c.db.dialect.classify(err)))
		return
	}
	multi := len(live) > 1
	ran := make([]answer, 0, len(live))
	var (
		broken  error     // the batch cannot commit
		culprit *writeReq // the request whose closure broke it, if any
		next    int       // live[next:] did not run
	)
	for ; next < len(live) && broken == nil; next++ {
		r := live[next]
		if err := r.ctx.Err(); err != nil {
			r.in <- writeMsg{err: err}
			continue
		}
		if multi {
			if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT berth_batch"); err != nil {
				broken = fmt.Errorf("store: savepoint: %w", err)
				break
			}
		}
		t := &tx{ctx: r.ctx, tx: sqlTx, db: c.db, now: c.db.cfg.Clock.Now().UTC(), stmts: c.db.wstmts, batch: bs}
		o := c.run(r, t)
		t.ended.Store(true)
		ran = append(ran, answer{r, o})
		failed := o.err != nil || o.panicked
		switch {
		case bs.rolledBack.Load():
			broken, culprit = errTxRolledBack, r
		case multi && failed:
			if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO berth_batch"); err != nil {
				broken, culprit = fmt.Errorf("store: rollback to savepoint: %w", err), r
			} else if _, err := sqlTx.ExecContext(ctx, "RELEASE berth_batch"); err != nil {
				broken, culprit = fmt.Errorf("store: release savepoint: %w", err), r
			}
		case multi:
			if _, err := sqlTx.ExecContext(ctx, "RELEASE berth_batch"); err != nil {
				broken, culprit = fmt.Errorf("store: release savepoint: %w", err), r
			}
		case failed: // alone in its transaction: roll it back
			broken, culprit = errClosureFailed, r
		}
	}
	if broken == nil && bs.rolledBack.Load() {
		broken = errTxRolledBack
	}
	if broken != nil {
		_ = sqlTx.Rollback()
		retry := &batchAbortedError{broken}
		for _, a := range ran {
			switch {
			case a.outcome.panicked, a.r == culprit && a.outcome.err != nil:
				a.r.in <- a.outcome.reply()
			default:
				a.r.in <- writeMsg{err: retry}
			}
		}
		fail(live[next:], retry)
		return
	}
	if err := sqlTx.Commit(); err != nil {
		err = &commitError{c.db.dialect.classify(err)}
		for _, a := range ran {
			if a.outcome.panicked {
				a.r.in <- a.outcome.reply()
				continue
			}
			a.r.in <- writeMsg{err: err}
		}
		return
	}
	c.db.stats.commits.Add(1)
	c.db.stats.updates.Add(uint64(len(ran)))
	for _, a := range ran {
		a.r.in <- a.outcome.reply()
	}
}

// checkTx reports why t may not run a statement, or nil.
func (t *tx) checkTx() error {
	if t.batch == nil {
		return nil
	}
	if t.ended.Load() {
		return sql.ErrTxDone
	}
	if t.batch.rolledBack.Load() {
		return errTxRolledBack
	}
	return nil
}
