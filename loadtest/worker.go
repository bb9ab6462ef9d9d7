package loadtest

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// clock is the generator's monotonic clock (ns since the process started
// measuring); timestamps in messages use it.
var clockBase = time.Now()

func now() int64 { return int64(time.Since(clockBase)) }

// worker drives its share of the connections from one OS thread: a
// periodic timerfd and the sockets in one epoll set. Sends follow the
// schedule t0 + k·interval (open loop); latency is measured from the
// scheduled time, so a late send counts against the result, never for it.
type worker struct {
	epfd, tfd int
	byFD      map[int]*lconn
	senders   []*lconn

	interval int64 // ns between this worker's send slots (0: it sends nothing)
	burst    int   // messages per slot, written together on one connection
	t0       int64 // first send time
	stopAt   int64 // last scheduled send time (exclusive)
	k        int64 // sends scheduled so far
	warmEnd  int64 // messages scheduled before this are not measured
	tick     time.Duration

	hist       *hdrhistogram.Histogram // measured window
	interval1s *hdrhistogram.Histogram
	sec        int64 // current progress second

	readBuf []byte
	touched []*lconn

	// fanout --slow-read: subscribers read at a bounded byte rate (until
	// stopAt, then at once); --count: every subscriber's seqs accounted.
	slow        []*lconn
	slowLast    int64
	acctTarget  atomic.Int64 // seqs the room will have had (-1: not known yet)
	acctPending atomic.Int64 // members not yet covered up to it (-1: not checked)
	acctChecked int64

	// storm scenario: sequence tracking, drops and reconnects.
	trackSeq     bool
	incoming     chan *lconn  // reconnected connections to adopt
	dropShare    atomic.Int64 // per mille of subscribers to drop now (0: none)
	dropped      chan *lconn  // connections this worker dropped, to reconnect
	gaps, dups   atomic.Int64
	errorAnswers atomic.Int64
	firstError   atomic.Pointer[string]
	unrecovered  atomic.Int64

	// Counters, read by the reporter while the worker runs.
	sent, sentMeasured, recv, recvMeasured, late atomic.Int64
	p99Last                                      atomic.Int64 // µs, p99 of the last full second
	quit                                         atomic.Bool
}

func newWorker(tick time.Duration) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	w := &worker{epfd: epfd, tfd: tfd, byFD: make(map[int]*lconn), tick: tick,
		hist: newHistogram(), interval1s: newHistogram(), readBuf: make([]byte, 256<<10)}
	w.acctTarget.Store(-1)
	w.acctPending.Store(-1)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *worker) add(c *lconn) error {
	w.byFD[c.fd] = c
	if c.silent {
		return nil // a slow consumer is never read
	}
	if c.readRate > 0 {
		w.slow = append(w.slow, c) // read by readSlow, at its pace
		return nil
	}
	return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)})
}

func (w *worker) close() {
	for fd := range w.byFD {
		unix.Close(fd)
	}
	unix.Close(w.tfd)
	unix.Close(w.epfd)
}

// run loops until until (ns on the clock), sending on schedule and reading.
func (w *worker) run(until int64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ts := unix.NsecToTimespec(int64(w.tick))
	_ = unix.TimerfdSettime(w.tfd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil)
	events := make([]unix.EpollEvent, 1024)
	var tbuf [8]byte
	for !w.quit.Load() {
		t := now()
		if t >= until {
			return
		}
		w.sendDue(t)
		if w.trackSeq {
			w.storm()
		}
		if len(w.slow) > 0 {
			w.readSlow(t)
		}
		if w.acctTarget.Load() >= 0 && t-w.acctChecked > int64(time.Millisecond) {
			w.acctChecked = t
			w.checkAccounts()
		}
		n, err := unix.EpollWait(w.epfd, events, 100)
		if err != nil && err != unix.EINTR {
			return
		}
		t = now()
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == w.tfd {
				_, _ = unix.Read(w.tfd, tbuf[:])
				continue
			}
			c := w.byFD[fd]
			if c == nil || c.closed {
				continue
			}
			if events[i].Events&unix.EPOLLOUT != 0 {
				w.flush(c)
			}
			if events[i].Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				w.read(c, t)
			}
		}
		w.rollSecond(t)
	}
}

// sendDue queues every send scheduled up to t, then writes each touched
// connection once.
func (w *worker) sendDue(t int64) {
	if w.interval == 0 || len(w.senders) == 0 {
		return
	}
	for {
		sched := w.t0 + w.k*w.interval
		if sched > t || sched >= w.stopAt {
			break
		}
		c := w.senders[w.k%int64(len(w.senders))]
		w.k++
		c.sent += int64(w.burst)
		if c.closed {
			continue
		}
		putTS(c.frame[c.tOff:], sched)
		for b := 0; b < w.burst; b++ {
			c.out = append(c.out, c.frame...)
		}
		if !c.dirty {
			c.dirty = true
			w.touched = append(w.touched, c)
		}
		w.sent.Add(int64(w.burst))
		if sched >= w.warmEnd {
			w.sentMeasured.Add(int64(w.burst))
		}
		if t-sched > int64(time.Millisecond) {
			w.late.Add(int64(w.burst))
		}
	}
	for _, c := range w.touched {
		c.dirty = false
		w.flush(c)
	}
	clear(w.touched)
	w.touched = w.touched[:0]
}

// flush writes c.out; what the socket does not take waits for EPOLLOUT.
func (w *worker) flush(c *lconn) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if n > 0 {
			c.out = c.out[:copy(c.out, c.out[n:])]
		}
		if err == unix.EAGAIN {
			if !c.wantOut {
				c.wantOut = true
				ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP, Fd: int32(c.fd)}
				if c.silent || c.readRate > 0 { // not in the epoll set for reading
					ev.Events = unix.EPOLLOUT
					_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
				} else {
					_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
				}
			}
			return
		}
		if err != nil {
			w.drop(c)
			return
		}
	}
	if c.wantOut { // all written: stop asking for EPOLLOUT
		c.wantOut = false
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
		if c.silent || c.readRate > 0 { // not in the epoll set for reading
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		} else {
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
		}
	}
}

func (w *worker) drop(c *lconn) {
	c.closed = true
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
}

// read drains c's socket and handles every complete frame.
func (w *worker) read(c *lconn, t int64) {
	for {
		n, err := unix.Read(c.fd, w.readBuf)
		if n > 0 {
			w.frames(c, w.readBuf[:n], t)
		}
		if n == len(w.readBuf) {
			continue
		}
		if err == unix.EAGAIN || (err == nil && n > 0) {
			return
		}
		w.drop(c) // EOF or error
		return
	}
}

// frames handles each complete server frame in data, read from c after
// the partial frame that c.in holds, and keeps the rest in c.in.
func (w *worker) frames(c *lconn, data []byte, t int64) {
	reassembleOps(&c.in, data, func(op byte, p []byte) {
		if op == opPing {
			w.pong(c, p)
		} else {
			w.message(c, p, t)
		}
	})
}

const (
	opPing = 0x9
	opPong = 0xA
)

// pong answers a server ping (the server pings a connection that has
// been silent for heartbeat_interval and closes it after idle_timeout, 55
// s by default: a subscriber only reads, so without pongs it is closed
// as dead).
func (w *worker) pong(c *lconn, p []byte) {
	if c.closed {
		return
	}
	c.out = appendClientFrameOp(c.out, opPong, p)
	w.flush(c)
}

// message records the latency of one `message` frame.
func (w *worker) message(c *lconn, p []byte, t int64) {
	if c.acct != nil && c.acct.frame(p) && c.readRate > 0 {
		return // a slow reader's messages are counted, not timed
	}
	if !bytes.HasPrefix(p, msgPrefix) && !bytes.HasPrefix(p, resultPrefix) {
		switch {
		case bytes.HasPrefix(p, errorPrefix):
			w.errorAnswers.Add(1)
			if w.firstError.Load() == nil {
				msg := string(p)
				w.firstError.Store(&msg)
			}
		case w.trackSeq && bytes.Contains(p, recoveredFalse):
			w.unrecovered.Add(1)
		}
		return
	}
	if w.trackSeq {
		c.seen(p, w)
	}
	i := bytes.Index(p, tsMarker)
	if i < 0 {
		return
	}
	sched, ok := parseTS(p[i+len(tsMarker):])
	if !ok {
		return
	}
	w.recv.Add(1)
	if sched < w.warmEnd {
		return
	}
	w.recvMeasured.Add(1)
	us := (t - sched) / 1000
	if us < 1 {
		us = 1
	}
	_ = w.hist.RecordValue(us)
	_ = w.interval1s.RecordValue(us)
}

// readSlow reads each slow subscriber at its byte rate (at least 1 KiB
// at a time, at most 100 ms of its rate saved up); from stopAt on, it
// reads them at once, so the run can account for every seq.
func (w *worker) readSlow(t int64) {
	dt := t - w.slowLast
	if w.slowLast == 0 {
		dt = 0
	}
	w.slowLast = t
	catchUp := t >= w.stopAt
	for _, c := range w.slow {
		if c.closed {
			continue
		}
		if catchUp {
			w.read(c, t)
			continue
		}
		c.budget = min(c.budget+float64(c.readRate)*float64(dt)/1e9, float64(c.readRate)/10+1024)
		n := min(int(c.budget), len(w.readBuf))
		if n < 1024 {
			continue
		}
		c.budget -= float64(w.readSome(c, t, n))
	}
}

// readSome makes one read of at most n bytes from c and handles the
// frames it completes; it returns the bytes read.
func (w *worker) readSome(c *lconn, t int64, n int) int {
	got, err := unix.Read(c.fd, w.readBuf[:n])
	if got > 0 {
		w.frames(c, w.readBuf[:got], t)
		return got
	}
	if err != unix.EAGAIN && err != unix.EINTR {
		w.drop(c) // EOF or error
	}
	return 0
}

// checkAccounts counts the accounted members not yet covered up to the
// room's final seq (acctTarget seqs after each one's join).
func (w *worker) checkAccounts() {
	target := w.acctTarget.Load()
	n := int64(0)
	for _, c := range w.byFD {
		if c.acct != nil && !c.closed && c.acct.covered < c.acct.base+target {
			n++
		}
	}
	w.acctPending.Store(n)
}

// rollSecond publishes the last second's p99 for the progress line.
func (w *worker) rollSecond(t int64) {
	if s := t / int64(time.Second); s != w.sec {
		w.sec = s
		w.p99Last.Store(w.interval1s.ValueAtQuantile(99))
		w.interval1s.Reset()
	}
}

var (
	seqMarker      = []byte(`"seq":`)
	recoveredFalse = []byte(`"recovered":false`)
)

// seen checks a message's seq against the last one c saw in its room.
func (c *lconn) seen(p []byte, w *worker) {
	i := bytes.Index(p, seqMarker)
	if i < 0 {
		return
	}
	var seq int64
	for _, d := range p[i+len(seqMarker):] {
		if d < '0' || d > '9' {
			break
		}
		seq = seq*10 + int64(d-'0')
	}
	switch {
	case seq == c.lastSeq+1:
		c.lastSeq = seq
	case seq > c.lastSeq+1:
		w.gaps.Add(seq - c.lastSeq - 1)
		c.lastSeq = seq
	default:
		w.dups.Add(1)
	}
}

// storm adopts reconnected connections and performs a requested drop.
func (w *worker) storm() {
	for {
		select {
		case c := <-w.incoming:
			w.byFD[c.fd] = c
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)})
			continue
		default:
		}
		break
	}
	share := w.dropShare.Swap(0)
	if share == 0 {
		return
	}
	acc := int64(0) // drop share‰ of the subscribers, spread evenly
	for fd, c := range w.byFD {
		if !c.sub || c.closed {
			continue
		}
		if acc += share; acc >= 1000 {
			acc -= 1000
			w.drop(c)
			unix.Close(fd)
			delete(w.byFD, fd)
			w.dropped <- c
		}
	}
}
