package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

const executionCols = `id, definition, status, phase, step, attempt, input, state, error, correlation, next_run_at, deadline,
lease_owner, lease_until, created_at, updated_at, version`

func scanExecution(s scanner) (*berth.Execution, error) {
	var x berth.Execution
	var status, phase, input, state string
	var next, deadline, lease, c, u int64
	err := s.Scan(&x.ID, &x.Definition, &status, &phase, &x.Step, &x.Attempt, &input, &state, &x.Error, &x.Correlation, &next,
		&deadline, &x.LeaseOwner, &lease, &c, &u, &x.Version)
	if err != nil {
		return nil, err
	}
	x.Status, x.Phase = berth.ExecutionStatus(status), berth.Phase(phase)
	x.Input, x.State = json.RawMessage(input), json.RawMessage(state)
	x.NextRunAt, x.Deadline, x.LeaseUntil = fromMicros(next), fromMicros(deadline), fromMicros(lease)
	x.CreatedAt, x.UpdatedAt = fromMicros(c), fromMicros(u)
	return &x, nil
}

func jsonText(m json.RawMessage) string {
	if len(m) == 0 {
		return "{}"
	}
	return string(m)
}

func (t *tx) CreateExecution(x *berth.Execution) error {
	if x.ID == "" {
		x.ID = berth.NewID()
	}
	x.CreatedAt, x.UpdatedAt, x.Version = t.now, t.now, 1
	_, err := t.exec(`INSERT INTO executions (id, definition, status, phase, step, attempt, input, state, error, correlation, next_run_at,
deadline, lease_owner, lease_until, created_at, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		x.ID, x.Definition, string(x.Status), string(x.Phase), x.Step, x.Attempt, jsonText(x.Input), jsonText(x.State), x.Error,
		x.Correlation, micros(x.NextRunAt), micros(x.Deadline), x.LeaseOwner, micros(x.LeaseUntil), micros(x.CreatedAt),
		micros(x.UpdatedAt), x.Version)
	return err
}

func (t *tx) GetExecution(id string) (*berth.Execution, error) {
	x, err := scanExecution(t.queryRow(`SELECT `+executionCols+` FROM executions WHERE id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "execution")
	}
	return x, nil
}

func (t *tx) UpdateExecution(x *berth.Execution) error {
	res, err := t.exec(`UPDATE executions SET status = $1, phase = $2, step = $3, attempt = $4, state = $5, error = $6, next_run_at = $7,
deadline = $8, lease_owner = $9, lease_until = $10, updated_at = $11, version = version + 1 WHERE id = $12 AND version = $13`,
		string(x.Status), string(x.Phase), x.Step, x.Attempt, jsonText(x.State), x.Error, micros(x.NextRunAt), micros(x.Deadline),
		x.LeaseOwner, micros(x.LeaseUntil), micros(t.now), x.ID, x.Version)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		if _, err := t.GetExecution(x.ID); err != nil {
			return err
		}
		return berth.Errorf(berth.ECONFLICT, "execution %s was changed by another runner", x.ID)
	}
	x.Version++
	x.UpdatedAt = t.now
	return nil
}

func (t *tx) ClaimExecutions(c berth.Claim) ([]*berth.Execution, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	args := []any{c.Owner, micros(t.now.Add(c.Lease)), micros(t.now), c.Limit}
	var where strings.Builder
	in := func(op string, names []string) {
		if len(names) == 0 {
			return
		}
		fmt.Fprintf(&where, " AND definition %s (", op)
		for i, n := range names {
			if i > 0 {
				where.WriteString(", ")
			}
			args = append(args, n)
			fmt.Fprintf(&where, "$%d", len(args))
		}
		where.WriteString(")")
	}
	in("IN", c.Definitions)
	in("NOT IN", c.Except)
	return queryAll(t, scanExecution, t.db.dialect.claimSQL(where.String()), args...)
}

func (t *tx) NextDue() (time.Time, error) {
	var next *int64
	if err := t.queryRow(`SELECT min(next_run_at) FROM executions WHERE status = 'RUNNING'`).Scan(&next); err != nil {
		return time.Time{}, err
	}
	if next == nil {
		return time.Time{}, nil
	}
	return fromMicros(*next), nil
}

func (t *tx) ReleaseLeases() (int, error) {
	res, err := t.exec(`UPDATE executions SET lease_owner = '', lease_until = 0, version = version + 1 WHERE status = 'RUNNING' AND lease_until > 0`)
	if err != nil {
		return 0, err
	}
	return int(affected(res)), nil
}

func (t *tx) ListExecutions(q berth.ExecutionQuery) ([]*berth.Execution, error) {
	var a args
	var where []string
	if q.Status != "" {
		where = append(where, "status = "+a.add(string(q.Status)))
	}
	if q.Definition != "" {
		where = append(where, "definition = "+a.add(q.Definition))
	}
	order := keyset(&a, &where, "''", "id", q.Page)
	return queryAll(t, scanExecution, `SELECT `+executionCols+` FROM executions`+whereClause(where)+order, a...)
}

func (t *tx) CountExecutions(status berth.ExecutionStatus) (int, error) {
	var n int
	err := t.queryRow(`SELECT count(*) FROM executions WHERE status = $1`, string(status)).Scan(&n)
	return n, err
}

func (t *tx) AppendHistory(entries ...*berth.HistoryEntry) error {
	// One INSERT for all the entries (a saga step writes two to six). Both
	// dialects number the rows of one INSERT in the order of its VALUES, so
	// the sorted sequence numbers belong to the entries in order.
	for len(entries) > 0 {
		batch := entries[:min(len(entries), maxHistoryBatch)]
		entries = entries[len(batch):]
		var q strings.Builder
		q.WriteString("INSERT INTO history (execution_id, type, state, attempt, detail, error, at) VALUES ")
		args := make([]any, 0, 7*len(batch))
		for i, e := range batch {
			if e.At.IsZero() {
				e.At = t.now
			}
			if i > 0 {
				q.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
			args = append(args, e.ExecutionID, string(e.Type), e.State, e.Attempt, e.Detail, e.Error, micros(e.At))
		}
		q.WriteString(" RETURNING seq")
		rows, err := t.query(q.String(), args...)
		if err != nil {
			return err
		}
		seqs := make([]int64, 0, len(batch))
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return t.db.dialect.classify(err)
			}
			seqs = append(seqs, seq)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return t.db.dialect.classify(err)
		}
		if len(seqs) != len(batch) {
			return fmt.Errorf("store: history insert returned %d rows for %d entries", len(seqs), len(batch))
		}
		slices.Sort(seqs)
		for i, e := range batch {
			e.Seq = seqs[i]
		}
	}
	return nil
}

// maxHistoryBatch bounds the entries of one INSERT (7 parameters each).
const maxHistoryBatch = 64

func (t *tx) ListHistory(executionID string) ([]*berth.HistoryEntry, error) {
	return queryAll(t, func(s scanner) (*berth.HistoryEntry, error) {
		var e berth.HistoryEntry
		var typ string
		var at int64
		if err := s.Scan(&e.Seq, &e.ExecutionID, &typ, &e.State, &e.Attempt, &e.Detail, &e.Error, &at); err != nil {
			return nil, err
		}
		e.Type, e.At = berth.HistoryType(typ), fromMicros(at)
		return &e, nil
	}, `SELECT seq, execution_id, type, state, attempt, detail, error, at FROM history WHERE execution_id = $1 ORDER BY seq`, executionID)
}
