package store

import (
	"strings"
	"time"

	"github.com/berthhq/berth"
)

func (t *tx) CreateAccount(a *berth.Account) error {
	if a.ID == "" {
		a.ID = berth.NewID()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = t.now
	}
	var n int
	if err := t.queryRow(`SELECT count(*) FROM accounts WHERE username = $1`, a.Username).Scan(&n); err != nil {
		return err
	} else if n > 0 {
		return berth.Errorf(berth.ECONFLICT, "username already exists")
	}
	if a.Email != "" {
		if err := t.queryRow(`SELECT count(*) FROM accounts WHERE email = $1`, a.Email).Scan(&n); err != nil {
			return err
		} else if n > 0 {
			return berth.Errorf(berth.ECONFLICT, "email already exists")
		}
	}
	_, err := t.exec(`INSERT INTO accounts (id, username, email, password_hash, groups_csv, status, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.ID, a.Username, nullable(a.Email), a.PasswordHash, strings.Join(a.Groups, ","), string(a.Status), micros(a.CreatedAt))
	return err
}

const accountCols = `id, username, COALESCE(email, ''), password_hash, groups_csv, status, created_at`

func scanAccount(s scanner) (*berth.Account, error) {
	var a berth.Account
	var groups, status string
	var created int64
	if err := s.Scan(&a.ID, &a.Username, &a.Email, &a.PasswordHash, &groups, &status, &created); err != nil {
		return nil, err
	}
	a.Groups = splitList(groups)
	a.Status = berth.AccountStatus(status)
	a.CreatedAt = fromMicros(created)
	return &a, nil
}

func (t *tx) GetAccount(id string) (*berth.Account, error) {
	a, err := scanAccount(t.queryRow(`SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "account")
	}
	return a, nil
}

func (t *tx) GetAccountByUsername(username string) (*berth.Account, error) {
	a, err := scanAccount(t.queryRow(`SELECT `+accountCols+` FROM accounts WHERE username = $1`, username))
	if err != nil {
		return nil, t.notFound(err, "account")
	}
	return a, nil
}

func (t *tx) CreateAPIKey(k *berth.APIKey) error {
	if k.ID == "" {
		k.ID = berth.NewID()
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = t.now
	}
	_, err := t.exec(`INSERT INTO api_keys (id, name, secret_hash, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.Name, k.SecretHash, micros(k.CreatedAt), micros(k.ExpiresAt), micros(k.RevokedAt))
	return err
}

const apiKeyCols = `id, name, secret_hash, created_at, expires_at, revoked_at`

func scanAPIKey(s scanner) (*berth.APIKey, error) {
	var k berth.APIKey
	var c, e, r int64
	if err := s.Scan(&k.ID, &k.Name, &k.SecretHash, &c, &e, &r); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromMicros(c), fromMicros(e), fromMicros(r)
	return &k, nil
}

func (t *tx) GetAPIKey(id string) (*berth.APIKey, error) {
	k, err := scanAPIKey(t.queryRow(`SELECT `+apiKeyCols+` FROM api_keys WHERE id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "API key")
	}
	return k, nil
}

func (t *tx) ListAPIKeys() ([]*berth.APIKey, error) {
	return queryAll(t, scanAPIKey, `SELECT `+apiKeyCols+` FROM api_keys ORDER BY created_at, id`)
}

func (t *tx) RevokeAPIKey(id string, at time.Time) error {
	res, err := t.exec(`UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, micros(at), id)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		if _, err := t.GetAPIKey(id); err != nil {
			return err
		}
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query and scans every row with scan.
func queryAll[T any](t *tx, scan func(scanner) (*T, error), query string, args ...any) ([]*T, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
