//go:build !race

package airline_test

const raceEnabled = false
