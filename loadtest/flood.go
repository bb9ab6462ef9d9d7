package loadtest

import (
	"bytes"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A flooder (echo --flood N) is a misbehaving producer next to the
// well-behaved echo clients: one connection that publishes as fast as
// the server reads, ignoring flow control and rate_limited answers, into
// its own room (load.flood.<i>, which it joined: what the server accepts
// comes back to it, so it counts its accepted messages itself). It runs
// from the warm-up's start to the window's end on its own OS thread,
// scheduled SCHED_IDLE by default (FloodSched), so on a shared generator
// core it uses what the measuring worker leaves: the well-behaved
// clients' latency stays the server's, not the generator's. Its messages are counted
// exactly: after the flood it waits for its bucket to refill and
// publishes one end marker; when the marker's echo is back, every message
// it sent was either accepted (echoed) or dropped by the rate limit.

// FloodResult is what the flooders did, summed.
type FloodResult struct {
	Conns          int     `json:"conns"`
	Room           string  `json:"room"` // "own": each its own room, joined
	Seconds        float64 `json:"seconds"`
	Sent           int64   `json:"sent"`            // whole messages written
	Accepted       int64   `json:"accepted"`        // echoed back: published into its room
	RateLimited    int64   `json:"rate_limited"`    // sent − accepted: dropped by the rate limit
	LimitedAnswers int64   `json:"limited_answers"` // rate_limited error frames it got (at most one a second)
	Pauses         int64   `json:"pauses"`          // flow pause frames it got (and ignored)
	SentPerS       float64 `json:"sent_per_s"`
	AcceptedPerS   float64 `json:"accepted_per_s"`
	Exact          bool    `json:"exact"` // every end marker came back: the counts are final
}

type flooder struct {
	fd    int
	room  string
	frame []byte // one publish frame
	buf   []byte // whole frames back to back

	sent, accepted, limited, pauses atomic.Int64
	markerBack                      atomic.Bool
	wrote                           int64 // bytes written (writer only)
	t0, t1                          int64
	quit                            atomic.Bool
}

var floodMarker = []byte(`"p":"end-of-flood"`)

func newFlooder(c *lconn, room string, size int) *flooder {
	frame, _ := buildPublish(room, size)
	n := max(1, (64<<10)/len(frame))
	return &flooder{fd: c.fd, room: room, frame: frame, buf: bytes.Repeat(frame, n)}
}

// flood writes from start until stop (generator clock), as fast as the
// socket takes it, then completes the frame it was in the middle of.
func (f *flooder) flood(start, stop int64, sched string) {
	runtime.LockOSThread() // never unlocked: the thread (and its policy) ends with the goroutine
	switch sched {
	case "idle":
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
	case "nice":
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
	}
	if d := start - now(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	f.t0 = now()
	pos := 0
	fl := len(f.frame)
	for {
		t := now()
		if t >= stop || f.quit.Load() {
			if pos%fl == 0 {
				break
			}
			end := pos + fl - pos%fl // finish the frame, or the server waits for its rest
			if writeFD(f.fd, f.buf[pos:end]) == nil {
				f.wrote += int64(end - pos)
			}
			break
		}
		n, err := unix.Write(f.fd, f.buf[pos:])
		if n > 0 {
			pos += n
			f.wrote += int64(n)
			if pos == len(f.buf) {
				pos = 0
			}
			f.sent.Store(f.wrote / int64(fl))
		}
		if err == unix.EAGAIN {
			fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLOUT}}
			_, _ = unix.Poll(fds, 10)
		} else if err != nil && err != unix.EINTR {
			break
		}
	}
	f.t1 = now()
	f.sent.Store(f.wrote / int64(fl))
}

// finish publishes the end marker once the bucket has had time to
// refill (wait), so the marker is not itself dropped.
func (f *flooder) finish(wait time.Duration) {
	time.Sleep(wait)
	marker := buildRaw(`{"type":"publish","room":` + strconv.Quote(f.room) + `,"data":{"p":"end-of-flood"}}`)
	_ = writeFD(f.fd, marker)
}

// buildRaw makes a masked client text frame of payload.
func buildRaw(payload string) []byte { return appendClientFrame(nil, []byte(payload)) }

// read counts what comes back until quit.
func (f *flooder) read() {
	buf := make([]byte, 256<<10)
	var in []byte
	for !f.quit.Load() {
		n, err := unix.Read(f.fd, buf)
		if n > 0 {
			reassemble(&in, buf[:n], f.frameIn)
			continue
		}
		if err == unix.EAGAIN || err == unix.EINTR {
			fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(fds, 20)
			continue
		}
		return // EOF or error
	}
}

func (f *flooder) frameIn(p []byte) {
	switch {
	case bytes.HasPrefix(p, msgPrefix):
		if bytes.Contains(p, floodMarker) {
			f.markerBack.Store(true)
			return
		}
		f.accepted.Add(1)
	case bytes.HasPrefix(p, errorPrefix):
		if bytes.Contains(p, []byte(`"rate_limited"`)) {
			f.limited.Add(1)
		}
	case bytes.HasPrefix(p, flowPause):
		f.pauses.Add(1)
	}
}

var (
	flowPause  = []byte(`{"type":"flow","state":"pause"`)
	flowResume = []byte(`{"type":"flow","state":"resume"`)
)

// reassemble handles data, read after the partial frame that *in holds:
// fn gets the payload of each complete server frame, and *in keeps what
// is left.
func reassemble(in *[]byte, data []byte, fn func(p []byte)) {
	reassembleOps(in, data, func(_ byte, p []byte) { fn(p) })
}

// reassembleOps is reassemble with each frame's opcode.
func reassembleOps(in *[]byte, data []byte, fn func(op byte, p []byte)) {
	if len(*in) > 0 {
		*in = append(*in, data...)
		data = *in
	}
	*in = append((*in)[:0], splitFrames(data, fn)...)
}

// splitFrames calls fn with the opcode and payload of each complete
// server frame (unmasked) in b and returns the rest.
func splitFrames(b []byte, fn func(op byte, p []byte)) []byte {
	for len(b) >= 2 {
		hl, n := 2, int(b[1]&0x7F)
		switch n {
		case 126:
			if len(b) < 4 {
				return b
			}
			hl, n = 4, int(b[2])<<8|int(b[3])
		case 127:
			if len(b) < 10 {
				return b
			}
			hl, n = 10, 0
			for _, x := range b[2:10] {
				n = n<<8 | int(x)
			}
		}
		if len(b) < hl+n {
			return b
		}
		fn(b[0]&0x0F, b[hl:hl+n])
		b = b[hl+n:]
	}
	return b
}

// floodResult sums the flooders.
func floodResult(fs []*flooder) *FloodResult {
	r := &FloodResult{Conns: len(fs), Room: "own", Exact: true}
	var secs float64
	for _, f := range fs {
		r.Sent += f.sent.Load()
		r.Accepted += f.accepted.Load()
		r.LimitedAnswers += f.limited.Load()
		r.Pauses += f.pauses.Load()
		r.Exact = r.Exact && f.markerBack.Load()
		secs = max(secs, float64(f.t1-f.t0)/1e9)
	}
	r.RateLimited = r.Sent - r.Accepted
	r.Seconds = secs
	if secs > 0 {
		r.SentPerS, r.AcceptedPerS = float64(r.Sent)/secs, float64(r.Accepted)/secs
	}
	return r
}
