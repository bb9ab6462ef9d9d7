package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// IdleOptions configures the idle scenario: N connections opened, each
// joined to a room, then held silent.
type IdleOptions struct {
	Addr    string        // host:port of the engine
	Path    string        // WebSocket path; default "/ws"
	TLS     *tls.Config   // wss:// with this client config; nil: plain
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
	fds := make([]int, 0, o.Conns)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if len(o.Sources) == 0 {
		o.Sources = []string{""}
	}
	start := time.Now()
	type result struct {
		fd  int
		err error
	}
	results := make(chan result, o.Conns) // never blocks a dialer, even after a cancel
	sem := make(chan struct{}, 64)
	go func() {
		for i := 0; i < o.Conns && ctx.Err() == nil; i++ {
			sem <- struct{}{}
			go func(i int) {
				defer func() { <-sem }()
				c, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, source: o.Sources[i%len(o.Sources)],
					room: fmt.Sprintf("idle.%d", i%o.Rooms), since: -1, timeout: 15 * time.Second, tls: o.TLS})
				if err != nil {
					results <- result{-1, err}
					return
				}
				results <- result{c.fd, nil}
			}(i)
		}
	}()
	var firstErr error
	for i := 0; i < o.Conns; i++ {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if r.err != nil {
			res.Failed++
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		fds = append(fds, r.fd)
	}
	res.Conns = len(fds)
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
