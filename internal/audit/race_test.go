//go:build race

package audit

// raceEnabled: the race detector changes what allocates.
const raceEnabled = true
