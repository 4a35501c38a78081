//go:build tools

// Package tools pins the modules berth builds with (code generators and
// dependencies not yet imported elsewhere) so `go mod tidy -e` keeps them.
package tools

import (
	_ "github.com/99designs/gqlgen/graphql/handler"
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/vikstrous/dataloadgen"
	_ "golang.org/x/crypto/argon2"
	_ "modernc.org/sqlite"
	_ "pgregory.net/rapid"
)
