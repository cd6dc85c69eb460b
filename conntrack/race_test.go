//go:build race

package conntrack

// raceEnabled scales the heaviest tests down under the race detector.
const raceEnabled = true
