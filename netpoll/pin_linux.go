package netpoll

import "golang.org/x/sys/unix"

type cpuMask = unix.CPUSet

// pinThread binds the calling OS thread to the index-th CPU the process may
// use and returns the mask it had, so it can be restored before gnet hands
// the thread back to the Go runtime. Where the OS refuses it does nothing.
func pinThread(index int) (prev cpuMask, ok bool) {
	if unix.SchedGetaffinity(0, &prev) != nil {
		return prev, false
	}
	return prev, PinThread(index)
}

// unpinThread restores a mask saved by pinThread on the calling thread.
func unpinThread(prev cpuMask) { _ = unix.SchedSetaffinity(0, &prev) }

// PinThread binds the calling OS thread (lock the goroutine to it first with
// runtime.LockOSThread) to the index-th CPU of the process's affinity mask,
// modulo its size. It reports whether the OS accepted.
func PinThread(index int) bool {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return false
	}
	n := allowed.Count()
	if n == 0 {
		return false
	}
	want := index % n
	for cpu := 0; cpu < 1024; cpu++ {
		if !allowed.IsSet(cpu) {
			continue
		}
		if want == 0 {
			var set unix.CPUSet
			set.Set(cpu)
			return unix.SchedSetaffinity(0, &set) == nil
		}
		want--
	}
	return false
}
