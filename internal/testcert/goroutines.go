package testcert

import (
	"runtime"
	"strings"
)

// TLSGoroutines counts the goroutines running netpoll's TLS terminator
// (its accept loop, handshakes and pumps), by stack, goleak-style: gnet's
// worker pool and the runtime's own goroutines do not count. Tests use it
// to see that closed TLS connections leave nothing behind.
func TLSGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "netpoll.(*tlsConn)") || strings.Contains(g, "netpoll.(*tlsListener)") {
			n++
		}
	}
	return n
}
