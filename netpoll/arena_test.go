package netpoll

import "testing"

// fillArena reserves and commits n bytes in frames of 500 bytes.
func fillArena(a *arena, n int) {
	for ; n > 0; n -= 500 {
		b := a.reserve(500)
		a.commit(b[:500])
	}
}

// A loop that writes the same large batch every time (a lagging member
// drained by lag_bytes/2) reuses its chunks: no allocation per batch.
func TestArenaKeepsWhatBatchesUse(t *testing.T) {
	var a arena
	const batch = 10 * arenaChunk // more than arenaKeep chunks
	fillArena(&a, batch)
	a.reset()
	allocs := testing.AllocsPerRun(100, func() {
		fillArena(&a, batch)
		a.reset()
	})
	if allocs != 0 {
		t.Fatalf("steady batches of %d KiB allocate %.1f times per batch, want 0", batch>>10, allocs)
	}
	if got := len(a.spare) + 1; got < 10 {
		t.Fatalf("kept %d chunks after batches of 10+, want at least 10", got)
	}
}

// After a burst the kept chunks decay back to arenaKeep, and never pass
// arenaKeepMax.
func TestArenaSparesDecayAndAreBounded(t *testing.T) {
	var a arena
	fillArena(&a, 2*arenaKeepMax*arenaChunk)
	a.reset()
	if got := len(a.spare) + 1; got != arenaKeepMax {
		t.Fatalf("kept %d chunks after a %d-chunk burst, want arenaKeepMax %d", got, 2*arenaKeepMax, arenaKeepMax)
	}
	for range arenaKeepMax * arenaDecay * 2 {
		fillArena(&a, 1000)
		a.reset()
	}
	if got := len(a.spare) + 1; got != arenaKeep {
		t.Fatalf("kept %d chunks after long small batches, want arenaKeep %d", got, arenaKeep)
	}
}
