// Package graphql serves berth's GraphQL API (NewHandler): the airline
// schema of the original application with its Amplify shapes, payments,
// sign-up and sign-in with berth's own issuer, and the operator fields
// (saga executions, the dead-letter queue, webhooks).
//
// The schema is schema.graphqls; gqlgen generates the executable schema
// and the input and page models into internal/generated (go generate
// ./graphql). Domain types (berth.Flight, berth.Booking, berth.Loyalty,
// berth.Actor, berth.BookingStatus) are bound directly, so resolvers only
// translate arguments and call the services.
//
// # Invariants
//
//   - Identity comes from the request context (berth.ActorFromContext), put
//     there by the HTTP middleware from verified credentials; input fields
//     never name the caller. processBooking ignores the input's customer,
//     status and id.
//   - Authorization is the services' job. This package checks only the
//     operator fields that have no service (executions, dead letters,
//     webhooks: Admin only), with the airline service's rules.
//   - Booking.outboundFlight is loaded per request in batches
//     (dataloadgen): one store read per batch, not one per booking.
//   - Every error has extensions.code (see presenter): berth's codes for
//     what the services say, INVALID for requests that are not valid
//     GraphQL (with gqlgen's own code in extensions.reason), INTERNAL with
//     the message "internal error" for anything unexpected, which is logged
//     with the request's context. Panics become INTERNAL and are logged.
//
// # Limits
//
// Bodies are at most 1 MiB (413). Selections nest at most Config.MaxDepth
// fields (introspection excepted). An operation costs at most
// Config.MaxComplexity: scalars 0, objects 1 plus their selections, a page
// field its limit (default 100) times its selection, an execution's
// history or the webhook list 20 times theirs. Pages hold 1 to 1000 items.
// Refusals are 400 with code INVALID; see transport.go for every status.
package graphql
