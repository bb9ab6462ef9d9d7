//go:build linux || darwin || freebsd

package state

import "golang.org/x/sys/unix"

// freeBytes returns the bytes available to an unprivileged user on the
// file system holding dir.
func freeBytes(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
}
