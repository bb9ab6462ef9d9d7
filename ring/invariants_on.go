//go:build invariants || race

package ring

// invariants enables expensive internal consistency checks. It is true when
// building with -tags invariants or -race.
const invariants = true
