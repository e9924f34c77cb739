//go:build race

package mask

// raceEnabled makes the slowest tests shrink under the race detector.
const raceEnabled = true
