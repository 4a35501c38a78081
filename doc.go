// Package berth is the vocabulary of the berth booking engine: accounts,
// resources with capacity, bookings and their tickets, charges, events, the
// actor making a call, error codes, and the Store contract that the storage
// package implements for SQLite and PostgreSQL.
//
// It imports only the standard library. Business rules that apply to every
// vertical live here or in package booking; adapters (store, graphql,
// httpapi) translate between this vocabulary and the outside world.
package berth
