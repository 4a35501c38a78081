//go:build race

package airline_test

// raceEnabled: the race detector slows the pure-Go SQLite driver about
// tenfold, so the property test runs fewer cases under it.
const raceEnabled = true
