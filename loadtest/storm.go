package loadtest

import (
	"context"
	"sync"
	"time"
)

// storm drops a share of the subscribers at once and reconnects them, each
// re-joining its room with since = the last seq it saw; it records how long
// until every one was back.
func storm(ctx context.Context, o Options, workers []*worker, res *Result) {
	start := now()
	perMille := int64(o.DropShare*1000 + 0.5)
	for _, w := range workers {
		w.dropShare.Store(perMille)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	deadline := time.After(o.Duration)
	for i, w := range workers {
		w := w
		for {
			var c *lconn
			select {
			case c = <-w.dropped:
			case <-time.After(200 * time.Millisecond): // this worker's drop is done
			case <-deadline:
			}
			if c == nil {
				break
			}
			mu.Lock()
			res.Reconnected++
			mu.Unlock()
			sem <- struct{}{}
			wg.Add(1)
			go func(c *lconn, src string) {
				defer wg.Done()
				defer func() { <-sem }()
				for attempt := 0; attempt < 20 && ctx.Err() == nil; attempt++ {
					nc, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, source: src, room: c.room, since: c.lastSeq, timeout: 10 * time.Second, tls: o.TLS})
					if err == nil {
						nc.sub, nc.room, nc.lastSeq = true, c.room, c.lastSeq
						w.incoming <- nc
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				mu.Lock()
				res.ReconnectFailures++
				mu.Unlock()
			}(c, o.Sources[i%len(o.Sources)])
		}
	}
	wg.Wait()
	mu.Lock()
	res.RecoveryMs = float64(now()-start) / 1e6
	mu.Unlock()
}

// stormVerdict counts what the subscribers missed: gaps inside what they
// received, and what they never got up to their room's last seq.
func stormVerdict(o Options, workers []*worker, res *Result) {
	sent := map[string]int64{} // room → messages published to it (= its last seq)
	for _, w := range workers {
		for _, c := range w.senders {
			sent[c.room] += c.sent
		}
	}
	var missing, gaps, dups, unrec int64
	for _, w := range workers {
		gaps += w.gaps.Load()
		dups += w.dups.Load()
		unrec += w.unrecovered.Load()
		for _, c := range w.byFD {
			if c.sub && !c.closed {
				missing += max(sent[c.room]-c.lastSeq, 0)
			}
		}
	}
	res.Lost = gaps + missing
	res.Gaps, res.Duplicates, res.Unrecovered = gaps, dups, unrec
}
