package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// IdleOptions configures the idle scenario: N connections opened, each
// joined to a room, then held silent.
type IdleOptions struct {
	Addr    string        // host:port of the engine
	Path    string        // WebSocket path; default "/ws"
	Conns   int           // connections to open; default 10,000
	Rooms   int           // rooms to spread them over; default 100
	Hold    time.Duration // how long to hold them after the last joined; default 5s
	Sources []string      // local IPs to dial from (127.0.0.x) when ports run short
	PID     int           // server pid, to read its RSS (0: don't)
	Timeout time.Duration // overall bound; default 2 minutes
}

// IdleResult is what the idle scenario measured.
type IdleResult struct {
	Conns          int
	Failed         int
	RSSBeforeKiB   int64
	RSSAfterKiB    int64
	PerConnKiB     float64
	ConnectSeconds float64
}

func (r IdleResult) String() string {
	return fmt.Sprintf("idle: %d connections joined (%d failed) in %.1fs; server RSS %d KiB → %d KiB: %.2f KiB per connection",
		r.Conns, r.Failed, r.ConnectSeconds, r.RSSBeforeKiB, r.RSSAfterKiB, r.PerConnKiB)
}

const handshake = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// maskedText builds a masked client text frame (mask key zero: the XOR is
// the identity, which RFC 6455 allows).
func maskedText(p []byte) []byte {
	out := []byte{0x81}
	if len(p) < 126 {
		out = append(out, 0x80|byte(len(p)))
	} else {
		out = append(out, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	return append(append(out, 0, 0, 0, 0), p...)
}

// readFrame reads one server frame's payload.
func readFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7F)
	if n == 126 {
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return nil, err
		}
		n = int(l[0])<<8 | int(l[1])
	} else if n == 127 {
		return nil, errors.New("loadtest: unexpected huge frame")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return p, err
}

// Idle runs the idle scenario.
func Idle(ctx context.Context, o IdleOptions) (IdleResult, error) {
	if o.Path == "" {
		o.Path = "/ws"
	}
	if o.Conns == 0 {
		o.Conns = 10_000
	}
	if o.Rooms == 0 {
		o.Rooms = 100
	}
	if o.Hold == 0 {
		o.Hold = 5 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var res IdleResult
	if o.PID > 0 {
		time.Sleep(500 * time.Millisecond)
		res.RSSBeforeKiB, _ = ProcessRSSKiB(o.PID)
	}
	conns := make([]net.Conn, 0, o.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	req := []byte(fmt.Sprintf(handshake, o.Path, o.Addr))
	const parallel = 64
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, parallel)
	next := 0
	inflight := 0
	dialOne := func(i int) {
		d := net.Dialer{Timeout: 10 * time.Second}
		if len(o.Sources) > 0 {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.Sources[i%len(o.Sources)])}
		}
		c, err := d.DialContext(ctx, "tcp", o.Addr)
		if err != nil {
			results <- result{nil, err}
			return
		}
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		br := bufio.NewReaderSize(c, 512)
		if _, err = c.Write(req); err == nil {
			for {
				var line []byte
				if line, err = br.ReadSlice('\n'); err != nil || len(bytes.TrimSpace(line)) == 0 {
					break
				}
			}
		}
		if err == nil {
			_, err = readFrame(br) // welcome
		}
		if err == nil {
			_, err = c.Write(maskedText([]byte(fmt.Sprintf(`{"type":"join","room":"idle.%d"}`, i%o.Rooms))))
		}
		if err == nil {
			_, err = readFrame(br) // joined
		}
		_ = c.SetDeadline(time.Time{})
		if err != nil {
			c.Close()
			c = nil
		}
		results <- result{c, err}
	}
	var firstErr error
	for next < o.Conns || inflight > 0 {
		for inflight < parallel && next < o.Conns {
			go dialOne(next)
			next++
			inflight++
		}
		r := <-results
		inflight--
		if r.err != nil {
			res.Failed++
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		conns = append(conns, r.c)
	}
	res.Conns = len(conns)
	res.ConnectSeconds = time.Since(start).Seconds()
	select {
	case <-time.After(o.Hold):
	case <-ctx.Done():
	}
	if o.PID > 0 {
		res.RSSAfterKiB, _ = ProcessRSSKiB(o.PID)
		if res.Conns > 0 {
			res.PerConnKiB = float64(res.RSSAfterKiB-res.RSSBeforeKiB) / float64(res.Conns)
		}
	}
	if res.Conns == 0 && firstErr != nil {
		return res, fmt.Errorf("loadtest: no connection succeeded: %w", firstErr)
	}
	return res, nil
}
