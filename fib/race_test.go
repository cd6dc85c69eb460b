//go:build race

package fib

// raceEnabled lets the heaviest tests scale down under the race detector,
// which makes every table store many times slower.
const raceEnabled = true
