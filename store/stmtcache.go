package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// stmtCache holds a pool's prepared statements, one per distinct query text,
// so that SQLite parses and plans each query once per connection instead of
// once per execution. A transaction uses them through Tx.StmtContext, which
// reuses the statement already prepared on the transaction's connection
// (or prepares it there once).
//
// A query met for the first time runs unprepared, and a background
// goroutine prepares it on the pool: preparing from inside a transaction
// would wait for a free connection while holding one, and SQLite's writer
// pool has only one.
type stmtCache struct {
	pool    *sql.DB
	stmts   sync.Map // query text → *sql.Stmt
	pending sync.Map // query text → struct{}: queued, prepared, or failed to prepare
	n       atomic.Int64
	queue   chan string
	cancel  context.CancelFunc
	done    chan struct{}
}

// maxStmts bounds the distinct query texts prepared per pool (the list
// queries build their text from the filters given, so the set is finite
// but not small).
const maxStmts = 512

func newStmtCache(pool *sql.DB) *stmtCache {
	ctx, cancel := context.WithCancel(context.Background())
	c := &stmtCache{pool: pool, queue: make(chan string, 64), cancel: cancel, done: make(chan struct{})}
	go c.prepareLoop(ctx)
	return c
}

// get returns the prepared statement for query, or nil if it is not
// prepared (yet).
func (c *stmtCache) get(query string) *sql.Stmt {
	if s, ok := c.stmts.Load(query); ok {
		return s.(*sql.Stmt)
	}
	if c.n.Load() >= maxStmts {
		return nil
	}
	if _, queued := c.pending.LoadOrStore(query, struct{}{}); !queued {
		select {
		case c.queue <- query:
			c.n.Add(1)
		default: // the preparer is behind: ask again next time
			c.pending.Delete(query)
		}
	}
	return nil
}

func (c *stmtCache) prepareLoop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-c.queue:
			// A query that does not prepare stays pending: it keeps
			// running unprepared, and its error shows where it runs.
			if s, err := c.pool.PrepareContext(ctx, q); err == nil {
				c.stmts.Store(q, s)
			}
		}
	}
}

// close stops the preparer and closes the statements.
func (c *stmtCache) close() {
	c.cancel()
	<-c.done
	c.stmts.Range(func(_, s any) bool {
		_ = s.(*sql.Stmt).Close()
		return true
	})
}
