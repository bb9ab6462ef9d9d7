package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The stall scenario: how soon the engine applies a room's backpressure
// policy once a subscriber stops reading.
//
// Per onset, in a fresh room (load.stall.<run>.<n>, so its seqs start
// where the subscriber's join says): a publisher outside the room
// publishes at Rate on an open-loop schedule and records when each
// message's write returned (t_pub(i) for the i-th, seq base+i); a
// subscriber reads everything for Before, stops reading at t_stop (it
// simply makes no more read calls; what its socket holds stays there),
// waits Stall, then reads everything, accounting for every seq: each is
// delivered or inside a gap notice, once, in order.
//
// The engine, with a drop-oldest policy, starts holding a member's
// messages in its queue at the first message it cannot hand to the socket
// without passing lag_bytes unread, and, once the queue holds max_pending,
// drops the oldest: so the first gap notice the subscriber gets starts at
// the first message the policy held back, and
//
//	Δ = t_pub(first gap's from) − t_stop
//
// is the time from the stop to the engine applying the policy. It is the
// time the publish rate takes to fill what lies between: the subscriber's
// receive buffer, the server's send buffer (socket_send_buffer) and
// lag_bytes; the onset reports the messages and bytes published in it.

// StallOptions configure the stall scenario.
type StallOptions struct {
	Addr   string
	Path   string
	TLS    *tls.Config
	Rate   float64       // publishes per second; default 2000
	Size   int           // data bytes per message; default 1024
	Onsets int           // default 7
	Before time.Duration // reading before the stop; default 300ms
	Stall  time.Duration // not reading; default 1s
	After  time.Duration // publishing after it reads again; default 200ms
	RcvBuf int           // the subscriber's SO_RCVBUF; 0: the system's (autotuned)
	Room   string        // room prefix; default load.stall
	Admin  string        // the engine's admin HOST:PORT: backpressure_dropped over the run
	Log    io.Writer
}

// StallOnset is one onset's measure.
type StallOnset struct {
	Published       int64   `json:"published"`
	PubBeforeStop   int64   `json:"published_before_stop"` // messages whose write returned before t_stop
	ReadBeforeStop  int64   `json:"read_before_stop"`      // seqs the subscriber had read at t_stop
	FirstGapFrom    int64   `json:"first_gap_from"`        // as an index (seq − base)
	FirstGapTo      int64   `json:"first_gap_to"`
	PolicyMs        float64 `json:"policy_ms"`         // Δ
	PubBetween      int64   `json:"published_between"` // published in (t_stop, t_pub(from))
	Buffered        int64   `json:"buffered_msgs"`     // neither read nor held back when the policy applied: from − 1 − read_before_stop
	BufferedBytes   int64   `json:"buffered_bytes"`    // the same, in the server's frame bytes: what the buffers between took
	UnreadAtStop    int64   `json:"unread_at_stop"`    // published before the stop, not read by then
	Misnumbered     int64   `json:"misnumbered"`       // messages whose seq was not base + their publish index
	Early           bool    `json:"early"`             // the policy applied before the stop (the subscriber was already behind): not a measure of the stop
	Delivered       int64   `json:"delivered"`
	Gapped          int64   `json:"gapped"`
	GapNotices      int64   `json:"gap_notices"`
	Exact           bool    `json:"exact"` // every seq delivered or in a gap, once, in order
	MaxPubLateMs    float64 `json:"max_pub_late_ms"`
	ServerFrameSize int     `json:"server_frame_bytes"`
}

// StallResult is the stall scenario's result.
type StallResult struct {
	Scenario string          `json:"scenario"`
	Rate     float64         `json:"rate"`
	Size     int             `json:"size"`
	RcvBuf   int             `json:"rcvbuf"`
	Onsets   []StallOnset    `json:"onsets"`
	PolicyMs Stat            `json:"policy_ms"` // over the onsets that are not early
	Early    int             `json:"early"`     // onsets whose policy applied before the stop (left out of the medians)
	Buffered Stat            `json:"buffered_bytes"`
	Exact    bool            `json:"exact"`
	Gapped   int64           `json:"gapped"` // over every onset
	Engine   *EngineCounters `json:"engine,omitempty"`
}

// Summary is the human-readable closing block.
func (r *StallResult) Summary() string {
	rb := "system default"
	if r.RcvBuf > 0 {
		rb = strconv.Itoa(r.RcvBuf) + " B"
	}
	s := fmt.Sprintf("stall: %d onsets, %.0f msgs/s of %d B, subscriber SO_RCVBUF %s\n", len(r.Onsets), r.Rate, r.Size, rb)
	s += fmt.Sprintf("  stop → policy applied ms: median %.3f  min %.3f  max %.3f (%d onsets", r.PolicyMs.Median, r.PolicyMs.Min, r.PolicyMs.Max, r.PolicyMs.N)
	if r.Early > 0 {
		s += fmt.Sprintf("; %d more left out: the policy applied before the stop, the subscriber was already behind", r.Early)
	}
	s += ")\n"
	s += fmt.Sprintf("  bytes between the last read and the first held back (what the buffers took): median %.0f  min %.0f  max %.0f\n", r.Buffered.Median, r.Buffered.Min, r.Buffered.Max)
	s += fmt.Sprintf("  every seq delivered or in a gap, once, in order: %v; %d seqs in gaps", r.Exact, r.Gapped)
	if e := r.Engine; e != nil {
		s += fmt.Sprintf("\n  engine (admin): backpressure_dropped %d, gap_notices %d (the subscribers counted %d)", e.BackpressureDropped, e.GapNotices, r.Gapped)
	}
	return s
}

// Stall runs the stall scenario.
func Stall(ctx context.Context, o StallOptions) (*StallResult, error) {
	if o.Path == "" {
		o.Path = "/ws"
	}
	if err := checkLoopback("--addr", o.Addr); err != nil {
		return nil, err
	}
	if o.Rate == 0 {
		o.Rate = 2000
	}
	if o.Size == 0 {
		o.Size = 1024
	}
	if o.Onsets == 0 {
		o.Onsets = 7
	}
	if o.Before == 0 {
		o.Before = 300 * time.Millisecond
	}
	if o.Stall == 0 {
		o.Stall = time.Second
	}
	if o.After == 0 {
		o.After = 200 * time.Millisecond
	}
	if o.Room == "" {
		o.Room = "load.stall"
	}
	if o.Rate <= 0 || o.Rate > 200_000 || o.Onsets < 1 || o.Onsets > 1000 || o.Before+o.Stall+o.After > 5*time.Minute {
		return nil, fmt.Errorf("loadtest: stall: --rate %v (0..200,000], --onsets %d (1..1000), before+stall+after %v (≤ 5m)", o.Rate, o.Onsets, o.Before+o.Stall+o.After)
	}
	pub, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, since: -1, timeout: 15 * time.Second, tls: o.TLS})
	if err != nil {
		return nil, err
	}
	defer unix.Close(pub.fd)
	engine, err := engineDelta(ctx, o.Admin)
	if err != nil {
		return nil, err
	}
	res := &StallResult{Scenario: "stall", Rate: o.Rate, Size: o.Size, RcvBuf: o.RcvBuf, Exact: true}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var policy, held []float64
	for n := 1; n <= o.Onsets; n++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		room := o.Room + "." + run + "." + strconv.Itoa(n)
		on, err := stallOnset(ctx, o, pub.fd, room)
		if err != nil {
			return res, fmt.Errorf("loadtest: stall: onset %d: %w", n, err)
		}
		res.Onsets = append(res.Onsets, on)
		res.Exact = res.Exact && on.Exact
		res.Gapped += on.Gapped
		if o.Log != nil {
			early := ""
			if on.Early {
				early = " EARLY (left out)"
			}
			fmt.Fprintf(o.Log, "onset %d:%s policy %.3f ms after the stop (first gap %d..%d; %d msgs published in between; %d msgs = %d B buffered, %d of them unread at the stop); delivered %d + gapped %d = %d of %d, exact %v\n",
				n, early, on.PolicyMs, on.FirstGapFrom, on.FirstGapTo, on.PubBetween, on.Buffered, on.BufferedBytes, on.UnreadAtStop, on.Delivered, on.Gapped, on.Delivered+on.Gapped, on.Published, on.Exact)
		}
		if on.FirstGapFrom == 0 {
			return res, fmt.Errorf("loadtest: stall: onset %d: no gap notice: is the room (%s) under a drop-oldest policy, and --stall long enough to fill the buffers and max_pending?", n, room)
		}
		if on.Early {
			res.Early++
		} else {
			policy = append(policy, on.PolicyMs)
			held = append(held, float64(on.BufferedBytes))
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.PolicyMs, res.Buffered = statOf(policy), statOf(held)
	res.Engine, err = engine()
	return res, err
}

func stallOnset(ctx context.Context, o StallOptions, pubFD int, room string) (StallOnset, error) {
	var on StallOnset
	sub, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, room: room, since: -1, rcvbuf: o.RcvBuf, timeout: 15 * time.Second, tls: o.TLS})
	if err != nil {
		return on, err
	}
	defer unix.Close(sub.fd)
	if sub.joinSeq < 0 {
		return on, errors.New("the joined answer carried no seq")
	}
	total := int(o.Rate * (o.Before + o.Stall + o.After).Seconds())
	frame, tOff := buildPublish(room, o.Size)
	pubAt := make([]int64, total+1) // 1-based: when the write of message i returned

	t0 := now() + int64(20*time.Millisecond)
	tStopPlan := t0 + int64(o.Before)
	var wg sync.WaitGroup
	var pubErr error
	var maxLate int64
	wg.Add(1)
	go func() { // the publisher: open loop, message i due at t0 + (i−1)/Rate
		defer wg.Done()
		out := make([]byte, 0, 64<<10)
		for i := 1; i <= total; {
			due := t0 + int64(float64(i-1)*1e9/o.Rate)
			if d := due - now(); d > 0 {
				// Sleep, never spin: the subscriber shares the generator's
				// core (and, pinned to one CPU, its only P).
				time.Sleep(time.Duration(d))
				continue
			}
			out = out[:0]
			first := i
			t := now()
			for ; i <= total && t0+int64(float64(i-1)*1e9/o.Rate) <= t; i++ {
				maxLate = max(maxLate, t-(t0+int64(float64(i-1)*1e9/o.Rate)))
				putTS(frame[tOff:], int64(i))
				out = append(out, frame...)
			}
			if err := writeFD(pubFD, out); err != nil {
				pubErr = err
				return
			}
			done := now()
			for k := first; k < i; k++ {
				pubAt[k] = done
			}
		}
	}()

	// The subscriber reads until the stop.
	acct := &seqAcct{base: sub.joinSeq, covered: sub.joinSeq}
	var firstFrom, firstTo int64
	frameSize := 0
	onFrame := func(p []byte) {
		if bytes.HasPrefix(p, gapPrefix) && firstFrom == 0 {
			firstFrom, _ = jsonInt(p, fromMarker)
			firstTo, _ = jsonInt(p, toMarker)
		}
		if bytes.HasPrefix(p, msgPrefix) {
			if frameSize == 0 {
				frameSize = len(p) + 4 // a 126-length header; 2 for short ones
				if len(p) < 126 {
					frameSize = len(p) + 2
				}
			}
			seq, _ := jsonInt(p, seqMarker)
			var idx int64 = -1
			if i := bytes.Index(p, tsMarker); i >= 0 {
				idx, _ = parseTS(p[i+len(tsMarker):])
			}
			if seq-sub.joinSeq != idx {
				on.Misnumbered++
			}
		}
		acct.frame(p)
	}
	buf := make([]byte, 256<<10)
	var in []byte
	readSome := func(wait time.Duration) bool {
		ts := unix.NsecToTimespec(int64(max(wait, 0)))
		if _, err := unix.Ppoll([]unix.PollFd{{Fd: int32(sub.fd), Events: unix.POLLIN}}, &ts, nil); err != nil && err != unix.EINTR {
			return false
		}
		for {
			n, err := unix.Read(sub.fd, buf)
			if n > 0 {
				reassemble(&in, buf[:n], onFrame)
				continue
			}
			return err == unix.EAGAIN || err == unix.EINTR
		}
	}
	for {
		left := tStopPlan - now()
		if left <= 0 {
			break
		}
		if !readSome(time.Duration(min(left, int64(5*time.Millisecond)))) {
			return on, errors.New("the subscriber's connection ended")
		}
	}
	tStop := now()
	readAtStop := acct.covered - acct.base
	// Not reading. Then everything, until every seq is accounted for.
	time.Sleep(time.Duration(tStopPlan + int64(o.Stall) - now()))
	wg.Wait() // the publisher has finished (After ends after the stall)
	if pubErr != nil {
		return on, pubErr
	}
	deadline := now() + int64(15*time.Second)
	for acct.covered < acct.base+int64(total) && now() < deadline {
		if !readSome(10 * time.Millisecond) {
			break
		}
	}
	on.Published = int64(total)
	on.ReadBeforeStop = readAtStop
	on.Delivered, on.Gapped, on.GapNotices = acct.delivered, acct.gapped, acct.gapNotices
	on.Exact = acct.complete(int64(total)) && on.Misnumbered == 0
	on.MaxPubLateMs = float64(maxLate) / 1e6
	on.ServerFrameSize = frameSize
	for i := 1; i <= total && pubAt[i] <= tStop; i++ {
		on.PubBeforeStop = int64(i)
	}
	on.UnreadAtStop = on.PubBeforeStop - readAtStop
	if firstFrom > 0 {
		from := firstFrom - acct.base
		on.FirstGapFrom, on.FirstGapTo = from, firstTo-acct.base
		if from >= 1 && from <= int64(total) {
			on.PolicyMs = float64(pubAt[from]-tStop) / 1e6
			on.Early = from <= readAtStop || pubAt[from] <= tStop
			on.PubBetween = from - 1 - on.PubBeforeStop
			on.Buffered = from - 1 - readAtStop
			on.BufferedBytes = on.Buffered * int64(frameSize)
		}
	}
	return on, nil
}

// writeFD writes b whole to a non-blocking fd.
func writeFD(fd int, b []byte) error {
	deadline := now() + int64(5*time.Second)
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
		}
		switch {
		case err == unix.EAGAIN:
			if now() > deadline {
				return errors.New("the engine stopped reading")
			}
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, 10)
		case err != nil && err != unix.EINTR:
			return err
		}
	}
	return nil
}
