package netpoll

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Options configures a Server. The zero value of every field means its
// documented default; call EnsureDefaults then Validate (NewServer does both).
type Options struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:8080".
	// Port 0 picks a free port; Server.Addr reports it.
	Addr string
	// Path is the only URL path that upgrades to WebSocket. Default "/ws".
	Path string
	// Loops is the number of event loops. Default runtime.GOMAXPROCS(0).
	Loops int
	// Pin locks each loop to an OS thread and that thread to one CPU
	// (sched_setaffinity) where the OS allows it. Default false.
	Pin bool
	// MaxConnectionsPerIP caps the open connections from one remote IP;
	// extra ones get HTTP 429. Default 0: no cap.
	MaxConnectionsPerIP int
	// MaxConnections caps open connections; extra ones get HTTP 503.
	// Default 100,000.
	MaxConnections int
	// MaxMessageSize caps a message (after reassembly and decompression), in
	// bytes; larger ones close the connection with 1009. Default 1 MiB.
	MaxMessageSize int
	// MaxHeaderBytes caps the HTTP upgrade request head. Default 8 KiB.
	MaxHeaderBytes int
	// HandshakeTimeout closes a connection that has not finished its upgrade
	// in time. Default 5s.
	HandshakeTimeout time.Duration
	// HeartbeatInterval: a connection silent this long gets a ping. Default 25s.
	HeartbeatInterval time.Duration
	// IdleTimeout: a connection silent this long (no frame, no pong) is
	// closed as dead. Default 2 × HeartbeatInterval + 5s.
	IdleTimeout time.Duration
	// WriteBufferLimit caps the bytes queued for one connection that does not
	// read; past it the connection is dropped. Default 4 MiB.
	WriteBufferLimit int
	// WriteBufferCap: a connection's unsent bytes up to this many are kept
	// in one ring buffer (grown by need, kept while it holds anything);
	// past it the rest goes to a list of pooled chunks. Capped at
	// WriteBufferLimit, then rounded up to a power of two by gnet (the
	// limit still closes the connection). A connection that stays
	// behind (a lagging member) reuses its ring while its backlog fits;
	// in the list, every partly written chunk goes back to gnet's pool a
	// size class down and the next is allocated anew (the soak's heap
	// profiles, bench/RESULTS.md "60-second overload soak"). Default
	// 64 KiB.
	WriteBufferCap int
	// DisableCompression turns permessage-deflate (RFC 7692) off. Default
	// false: compression is offered to clients that ask for it.
	DisableCompression bool
	// CompressionClientTakeover lets a client that asks for it compress
	// with context takeover; the server then keeps a 32 KiB window for each
	// such connection and inflating costs more. Default false: the server
	// answers client_no_context_takeover to every deflate offer.
	CompressionClientTakeover bool
	// CompressionLevel for outgoing messages (1 fastest … 9 smallest).
	// Default 1.
	CompressionLevel int
	// CompressionThreshold: outgoing messages shorter than this are sent
	// uncompressed even to deflate clients. Default 128 bytes.
	CompressionThreshold int
	// ReadBufferCap is the loop's read buffer. Default 64 KiB.
	ReadBufferCap int
	// ReadQuantum is the most frames one connection gets handled per
	// pass of its loop; the rest waits for a later pass (a Wake), after
	// the other connections with input: a flooding connection cannot hold
	// its loop. Default 64.
	ReadQuantum int
	// SocketSendBuffer sets SO_SNDBUF on accepted connections (bytes; the
	// kernel doubles it). Smaller buffers make a slow reader show in
	// Conn.Buffered sooner. Default 0: the system's (autotuned, up to
	// net.ipv4.tcp_wmem's maximum, often 4 MiB).
	SocketSendBuffer int
	// MeasureWrites records, per loop and per flush, the time from the
	// first frame queued in a batch to the end of its socket writes
	// (Loop.Counters().Write). It costs two clock reads per flush.
	// Default false.
	MeasureWrites bool
	// TLSAddr, when set, is a second TCP address whose connections speak
	// TLS (wss://): they are decrypted in front of the loops and then
	// handled like plain ones (see tls.go). Port 0 picks a free port;
	// Server.TLSAddr reports it. Default "": no TLS listener.
	TLSAddr string
	// TLSConfig serves TLSAddr (required with it; MinVersion at least
	// TLS 1.2). NewTLSConfig builds streamd's defaults around a
	// reloadable certificate (CertFiles).
	TLSConfig *tls.Config
	// CheckOrigin, if set, is asked about each Origin header; false → 403.
	CheckOrigin func(origin []byte) bool
	// Logger receives connection-level warnings. Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills every zero field with its default.
func (o *Options) EnsureDefaults() {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	if o.Path == "" {
		o.Path = "/ws"
	}
	if o.Loops == 0 {
		o.Loops = runtime.GOMAXPROCS(0)
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 100_000
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = 1 << 20
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 8 << 10
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 5 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 25 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 2*o.HeartbeatInterval + 5*time.Second
	}
	if o.WriteBufferLimit == 0 {
		o.WriteBufferLimit = 4 << 20
	}
	if o.WriteBufferCap == 0 {
		o.WriteBufferCap = 64 << 10
	}
	o.WriteBufferCap = min(o.WriteBufferCap, o.WriteBufferLimit)
	if o.CompressionLevel == 0 {
		o.CompressionLevel = 1
	}
	if o.CompressionThreshold == 0 {
		o.CompressionThreshold = 128
	}
	if o.ReadQuantum <= 0 {
		o.ReadQuantum = 64
	}
	if o.ReadBufferCap == 0 {
		o.ReadBufferCap = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every setting that cannot work, naming each.
func (o *Options) Validate() error { return o.ValidateAs("netpoll", nil) }

// ValidateAs is Validate for a caller that exposes these options under its
// own setting names: errors start with prefix and name each option by
// names[field] (the Options field name when absent), so a user reads the
// name they set.
func (o *Options) ValidateAs(prefix string, names map[string]string) error {
	name := func(field string) string {
		if n, ok := names[field]; ok {
			return n
		}
		return field
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(prefix+": "+format, args...))
	}
	if o.Loops < 1 {
		bad("%s = %d: need at least 1", name("Loops"), o.Loops)
	}
	if o.MaxMessageSize < 125 {
		bad("%s = %d: need at least 125 bytes", name("MaxMessageSize"), o.MaxMessageSize)
	}
	if o.MaxHeaderBytes < 256 {
		bad("%s = %d: need at least 256", name("MaxHeaderBytes"), o.MaxHeaderBytes)
	}
	if o.MaxConnectionsPerIP < 0 {
		bad("%s = %d: want ≥ 0 (0: no cap)", name("MaxConnectionsPerIP"), o.MaxConnectionsPerIP)
	}
	if o.MaxConnections < 1 {
		bad("%s = %d: need at least 1", name("MaxConnections"), o.MaxConnections)
	}
	if o.IdleTimeout <= o.HeartbeatInterval {
		bad("%s (%v) must exceed %s (%v)", name("IdleTimeout"), o.IdleTimeout, name("HeartbeatInterval"), o.HeartbeatInterval)
	}
	if o.WriteBufferLimit < 4096 {
		bad("%s = %d: need at least 4096 bytes", name("WriteBufferLimit"), o.WriteBufferLimit)
	}
	if o.WriteBufferCap < 0 {
		bad("%s = %d: want bytes ≥ 0 (0: 64 KiB)", name("WriteBufferCap"), o.WriteBufferCap)
	}
	if o.CompressionLevel < 1 || o.CompressionLevel > 9 {
		bad("%s = %d: want 1..9", name("CompressionLevel"), o.CompressionLevel)
	}
	if len(o.Path) == 0 || o.Path[0] != '/' {
		bad("%s %q must start with /", name("Path"), o.Path)
	}
	if o.TLSAddr != "" {
		switch {
		case o.TLSConfig == nil:
			bad("%s %q needs a certificate (TLSConfig)", name("TLSAddr"), o.TLSAddr)
		case o.TLSConfig.MinVersion < tls.VersionTLS12:
			bad("%s: TLS minimum version below 1.2: set it to 1.2 or 1.3", name("TLSAddr"))
		case o.TLSConfig.GetCertificate == nil && len(o.TLSConfig.Certificates) == 0 && o.TLSConfig.GetConfigForClient == nil:
			bad("%s %q needs a certificate (TLSConfig)", name("TLSAddr"), o.TLSAddr)
		}
	}
	return errors.Join(errs...)
}
