//go:build !linux

package netpoll

type cpuMask struct{}

// Pinning threads to CPUs is implemented on Linux only; elsewhere these do
// nothing and loops run unpinned.
func pinThread(int) (cpuMask, bool) { return cpuMask{}, false }
func unpinThread(cpuMask)           {}

// PinThread reports false: not supported on this OS.
func PinThread(int) bool { return false }
