package graphql

// The executable schema and its models (internal/generated) are generated
// from schema.graphqls by gqlgen, configured in gqlgen.yml. Regenerate after
// changing the schema and commit the result.
//go:generate go run github.com/99designs/gqlgen generate --config gqlgen.yml
