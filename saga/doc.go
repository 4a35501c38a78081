// Package saga is berth's durable saga engine.
//
// A Definition is ordinary Go: forward Steps, each an Action with an
// optional outside-world Call (run outside any transaction, idempotent by
// the key the engine derives from the execution and step) and an optional
// Tx function (run inside the transaction that records the step's
// completion). A step's database effects and the execution's advance to the
// next step therefore commit together: a crash leaves either the old state
// with its pending step or the new state with its next step.
//
// Failures: business errors (berth.IsBusiness: sold out, declined, …) skip
// retries; other errors are retried with exponential backoff and jitter.
// When a step before the point of no return fails for good (or the
// execution's deadline, the hold time, passes) the engine runs the
// definition's Compensation chain from the entry the step names. A
// compensation that still fails after its retries, or a step marked
// NoCompensate that fails for good, puts the execution in DEAD: the
// dead-letter queue. Redrive resumes a dead execution where it stopped.
//
// Runners claim due executions with a lease; a crashed runner's lease
// expires and another runner resumes from the last committed state. Every
// transition is recorded in the execution's append-only history.
//
// A job is a one-step definition (webhook delivery, event handler).
package saga
