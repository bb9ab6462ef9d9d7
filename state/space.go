package state

import (
	"fmt"
	"sync/atomic"
	"time"
)

// spaceGuard refuses writes while the file system of dir has less than
// min bytes free (Options.MinFreeBytes). Badger writes through mmap, where
// running out of space is a SIGBUS, not an error: stopping short of full
// turns it into ErrDiskFull.
//
// It asks the file system at most every spaceRecheck while there is
// plenty of room, and on every call once free space is within 2×min.
type spaceGuard struct {
	dir       string
	min       int64        // < 0: off
	checkedAt atomic.Int64 // unix ns of the last statfs
	free      atomic.Int64 // bytes free at checkedAt
}

const spaceRecheck = 100 * time.Millisecond

// check returns nil, or an error wrapping ErrDiskFull.
func (g *spaceGuard) check() error {
	if g.min < 0 {
		return nil
	}
	now := time.Now().UnixNano()
	free := g.free.Load()
	if now-g.checkedAt.Load() < int64(spaceRecheck) && free-g.min >= g.min { // free ≥ 2×min, no overflow
		return nil
	}
	f, ok := freeBytes(g.dir)
	if !ok {
		return nil // unknown on this platform: no guard
	}
	g.free.Store(f)
	g.checkedAt.Store(now)
	if f < g.min {
		return fmt.Errorf("%w: %d MiB free on the file system of %s, below Options.MinFreeBytes (%d MiB): free disk space (trim room logs, delete state) or lower MinFreeBytes",
			ErrDiskFull, f>>20, g.dir, g.min>>20)
	}
	return nil
}
