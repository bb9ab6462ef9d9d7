package loadtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// TLS (wss://): the workers drive raw non-blocking fds with epoll and
// cannot speak TLS themselves. So each wss connection is terminated here,
// in front of them, the way streamd terminates it in front of its loops:
// after the TLS handshake a socketpair is made, the worker gets one end
// (plaintext WebSocket, exactly as over ws://), and two goroutines pump
// between the other end and the tls.Conn. The generator pays for TLS
// (crypto, two goroutines and one extra copy per direction per
// connection), which counts in its own CPU figures and in the latency it
// measures: a wss run measures client and server TLS together.

// pipeBufSize is each pump's buffer; small messages need little, and a
// tls.Conn buffers whole records itself.
const pipeBufSize = 8 << 10

// ParseTarget splits --addr: HOST:PORT (plain), or a ws:// or wss:// URL
// whose path, if any, replaces path. secure is true for wss://.
func ParseTarget(addr, path string) (hostPort, outPath string, secure bool, err error) {
	if !strings.Contains(addr, "://") {
		return addr, path, false, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", "", false, fmt.Errorf("loadtest: --addr %q: %v", addr, err)
	}
	switch u.Scheme {
	case "ws":
	case "wss":
		secure = true
	default:
		return "", "", false, fmt.Errorf("loadtest: --addr %q: want HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH", addr)
	}
	hostPort = u.Host
	if u.Port() == "" {
		port := "80"
		if secure {
			port = "443"
		}
		hostPort = net.JoinHostPort(u.Hostname(), port)
	}
	outPath = path
	if p := u.RequestURI(); p != "" && p != "/" {
		outPath = p
	}
	return hostPort, outPath, secure, nil
}

// ClientTLSConfig is the generator's TLS client config for serverHost:
// TLS 1.2 or later, trusting the system roots plus caFile (PEM) if given,
// or nothing at all with insecure (self-signed test servers; never use it
// beyond a benchmark). A session cache lets re-dials (storm) resume.
func ClientTLSConfig(serverHost, caFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         serverHost,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile) // #nosec G304 -- the operator's --tls-ca
		if err != nil {
			return nil, fmt.Errorf("loadtest: --tls-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loadtest: --tls-ca %q: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if insecure {
		cfg.InsecureSkipVerify = true // #nosec G402 -- opt-in --tls-insecure, for benchmarks against self-signed servers
	}
	return cfg, nil
}

// tlsPipe runs the TLS handshake on nc and returns the plaintext end of a
// socketpair pumped to and from it. When either side ends, both close.
func tlsPipe(nc net.Conn, cfg *tls.Config, timeout time.Duration) (*net.UnixConn, error) {
	_ = nc.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("loadtest: TLS handshake: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	mine, err := unixConn(fds[0])
	if err != nil {
		_ = unix.Close(fds[1])
		return nil, err
	}
	theirs, err := unixConn(fds[1])
	if err != nil {
		_ = mine.Close()
		return nil, err
	}
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = nc.Close() // not tc.Close: its close_notify could block on a full socket
			_ = mine.Close()
		})
	}
	go pump(mine, tc, closeBoth)
	go pump(tc, mine, closeBoth)
	return theirs, nil
}

func pump(dst, src net.Conn, closeBoth func()) {
	defer closeBoth()
	buf := make([]byte, pipeBufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func unixConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "socketpair")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		_ = nc.Close()
		return nil, errors.New("loadtest: socketpair is not a unix conn")
	}
	return uc, nil
}
