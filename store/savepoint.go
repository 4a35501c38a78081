package store

import "fmt"

// Savepoint implements berth.Tx. Both dialects accept nested savepoints of
// one name; ROLLBACK TO and RELEASE refer to the innermost.
func (t *tx) Savepoint(fn func() error) (err error) {
	if _, err := t.exec("SAVEPOINT berth_sp"); err != nil {
		return fmt.Errorf("store: savepoint: %w", err)
	}
	undo := func() error {
		if _, err := t.exec("ROLLBACK TO SAVEPOINT berth_sp"); err != nil {
			return err
		}
		_, err := t.exec("RELEASE SAVEPOINT berth_sp")
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = undo()
			panic(p)
		}
	}()
	if err := fn(); err != nil {
		if uerr := undo(); uerr != nil {
			// The transaction itself is gone (SQLite rolls back the whole
			// transaction on some errors): nothing of it may commit.
			return fmt.Errorf("store: rollback to savepoint after %w: %w", err, uerr)
		}
		return err
	}
	if _, err := t.exec("RELEASE SAVEPOINT berth_sp"); err != nil {
		return fmt.Errorf("store: release savepoint: %w", err)
	}
	return nil
}
