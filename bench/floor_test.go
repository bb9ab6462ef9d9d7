package bench

import (
	"net"
	"syscall"
	"testing"
)

// BenchmarkLoopbackWriteFloor measures what one small write(2) to a
// loopback TCP socket costs on this machine, the floor under every fan-out
// and echo figure: the kernel runs the receiver's TCP path in the writer's
// context, so the cost includes delivery. sockets=1 writes to one socket;
// sockets=N round-robins over N sockets (as a fan-out does), with a reader
// goroutine draining the other ends. No Go runtime in the measured path but
// the syscall itself.
func BenchmarkLoopbackWriteFloor(b *testing.B) {
	for _, n := range []int{1, 1000, 5000} {
		b.Run("sockets="+itoa(n), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, n)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
					go func(c net.Conn) {
						buf := make([]byte, 64<<10)
						for {
							if _, err := c.Read(buf); err != nil {
								return
							}
						}
					}(c)
				}
			}()
			fds := make([]int, n)
			conns := make([]net.Conn, n)
			for i := range fds {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Skipf("dial %d: %v (raise the open-file limit)", i, err)
				}
				conns[i] = c
				raw, _ := c.(*net.TCPConn).SyscallConn()
				_ = raw.Control(func(fd uintptr) { fds[i] = int(fd) })
			}
			defer func() {
				for _, c := range conns {
					c.Close()
				}
				for len(accepted) > 0 {
					(<-accepted).Close()
				}
			}()
			msg := make([]byte, 100)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, _ = syscall.Write(fds[i%n], msg)
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
