// Package graphiql serves GraphiQL, the in-browser GraphQL IDE, for berth's
// GraphQL endpoint from assets embedded in the binary: the page loads no
// script, style sheet or font from the network, so it works offline and under
// a strict Content-Security-Policy (no inline script; the bootstrap code is
// assets/init.js, which reads the endpoint from a data-endpoint attribute).
//
// Mount the handler at its prefix, without http.StripPrefix:
//
//	mux.Handle("/graphiql/", graphiql.Handler("/graphiql/", "/graphql"))
//
// A browser GET on the GraphQL endpoint itself can be answered with the same
// page, either by routing that GET to the handler (which serves the page for
// the endpoint path too, with its security headers) or by writing Page.
//
// The page sends queries as a JSON POST {query, variables, operationName}
// with Content-Type: application/json, plus the headers typed into GraphiQL's
// headers editor; the default headers hold a placeholder Authorization header
// that is not sent until it is replaced by a real token.
//
// The files under assets/ are generated: rebuild them with
//
//	bash web/graphiql/build.sh
//
// which runs npm ci in web/graphiql (graphiql 4.1.2, react and react-dom
// 18.2.0, pinned by its package-lock.json) and copies the upstream browser
// builds, web/graphiql/src/init.js and berth.css, and the license texts of
// everything bundled (assets/licenses/, listed in assets/licenses/INDEX.txt).
// The built files are committed, so go build needs no npm.
package graphiql
