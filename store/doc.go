// Package store implements berth.Store over database/sql for SQLite (the
// embedded default, modernc.org/sqlite, no cgo) and PostgreSQL.
//
// One SQL text serves both dialects wherever they agree: numbered
// placeholders ($1), BIGINT microsecond timestamps, INTEGER booleans,
// RETURNING, ON CONFLICT. Where they differ (connection set-up, claiming
// work, notifications, error classification) the code lives in a dialect
// file. Business code never asks which database it runs on.
//
// Invariants the store guarantees:
//   - capacity changes only through one guarded UPDATE (Reserve/Release),
//     so 0 <= available <= capacity holds under any concurrency;
//   - a hold is taken and given back at most once, by its key;
//   - every write happens inside Update's transaction, retried as a whole on
//     busy/serialization errors.
package store
