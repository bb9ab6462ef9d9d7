package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The flow scenario: how soon a producer that floods is told to pause.
//
// One connection, in a room of its own (it joined it, so what the engine
// accepts comes back), against an engine with max_messages_per_second =
// Limit and flow_control on. Each onset starts with its bucket full (it
// was silent for Idle) and floods: one message per write, as fast as the
// socket takes them, stopping at the first {"type":"flow","state":"pause"}
// (it honours flow control), then waits for "resume".
//
// The engine's bucket holds Limit tokens and refills at Limit per second;
// it says pause when a message leaves it below half. So, by the
// generator's clock, with t_k the time the k-th message's write returned
// (k = 1, 2, …), the flood crosses the limit's sustained allowance at the
// first k with
//
//	k > Limit/2 + Limit·(t_k − t_1)
//
// (the crossing message k*, at T = t_k*). Measured, per onset:
//
//   - pause: the pause frame's arrival − T (the time to backpressure);
//   - in flight: the messages written after k* before the pause arrived
//     (K − k*, K the last one written), and the time from the pause's
//     arrival to the echo of message K (when the engine has handled
//     everything that was in flight, plus one loopback hop back);
//   - resume: the resume frame's arrival − when the bucket is back at 90 %
//     by the same model (t_1 + (K − Limit/10)/Limit);
//   - rate_limited answers (none expected: a producer that honours the
//     pause never meets the limit).
//
// The reads are non-blocking polls between writes, so an arrival is seen
// within one write (a few µs) of reaching the socket.

// FlowOptions configure the flow scenario.
type FlowOptions struct {
	Addr   string
	Path   string
	TLS    *tls.Config
	Limit  float64       // the engine's max_messages_per_second (required)
	Onsets int           // default 10
	Size   int           // data bytes per message; default 64
	Idle   time.Duration // silence before each onset (the bucket refills); default 1.2s
	Max    int           // messages at most per onset; default 4×Limit + 1000
	Batch  int           // messages per write (all with that write's time); default 1
	Admin  string        // the engine's admin HOST:PORT: flow_pauses and rate_limited over the run
	Log    io.Writer
}

// FlowOnset is one onset's measure.
type FlowOnset struct {
	Sent           int     `json:"sent"`            // K: messages written
	Crossing       int     `json:"crossing"`        // k*: 0 if it never crossed
	CrossingAtMs   float64 `json:"crossing_at_ms"`  // t_k* − t_1
	PauseMs        float64 `json:"pause_ms"`        // pause arrival − t_k*
	InFlight       int     `json:"in_flight"`       // K − k*
	Dropped        int     `json:"dropped"`         // K − accepted: in flight and over the limit
	LastEchoMs     float64 `json:"last_echo_ms"`    // echo of the last accepted message − pause arrival
	ResumeMs       float64 `json:"resume_ms"`       // resume arrival − model's 90 % time
	FloodPerS      float64 `json:"flood_per_s"`     // messages per second while flooding
	Accepted       int     `json:"accepted"`        // echoes back
	LimitedAnswers int     `json:"limited_answers"` // rate_limited error frames
	Paused         bool    `json:"paused"`          // a pause came
	Resumed        bool    `json:"resumed"`         // a resume came
}

// Stat is a distribution's median, min and max over the onsets.
type Stat struct {
	N      int     `json:"n"` // values (0: none, and the rest are 0)
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func statOf(v []float64) Stat {
	if len(v) == 0 {
		return Stat{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
}

// FlowResult is the flow scenario's result.
type FlowResult struct {
	Scenario   string          `json:"scenario"`
	Limit      float64         `json:"limit"`
	Size       int             `json:"size"`
	Batch      int             `json:"batch"`
	Onsets     []FlowOnset     `json:"onsets"`
	PauseMs    Stat            `json:"pause_ms"`
	InFlight   Stat            `json:"in_flight"`
	Dropped    int             `json:"dropped"` // in flight and over the limit, over every onset
	LastEchoMs Stat            `json:"last_echo_ms"`
	ResumeMs   Stat            `json:"resume_ms"`
	FloodPerS  Stat            `json:"flood_per_s"`
	Limited    int             `json:"limited_answers"` // over every onset
	Engine     *EngineCounters `json:"engine,omitempty"`
}

// Summary is the human-readable closing block.
func (r *FlowResult) Summary() string {
	s := fmt.Sprintf("flow: %d onsets against max_messages_per_second %.0f, flood %.0f msgs/s (median), %d per write\n", len(r.Onsets), r.Limit, r.FloodPerS.Median, r.Batch)
	s += fmt.Sprintf("  crossing → pause arrival ms: median %.3f  min %.3f  max %.3f\n", r.PauseMs.Median, r.PauseMs.Min, r.PauseMs.Max)
	s += fmt.Sprintf("  in flight after the crossing: median %.0f msgs (min %.0f, max %.0f); pause → last echo ms: median %.3f (max %.3f)\n",
		r.InFlight.Median, r.InFlight.Min, r.InFlight.Max, r.LastEchoMs.Median, r.LastEchoMs.Max)
	s += fmt.Sprintf("  resume after the bucket is back at 90%%, ms: median %.3f  min %.3f  max %.3f\n", r.ResumeMs.Median, r.ResumeMs.Min, r.ResumeMs.Max)
	s += fmt.Sprintf("  in flight and dropped by the limit: %d over %d onsets (rate_limited answers: %d, at most one a second)", r.Dropped, len(r.Onsets), r.Limited)
	if e := r.Engine; e != nil {
		s += fmt.Sprintf("\n  engine (admin): flow_pauses %d, rate_limited %d, published %d", e.FlowPauses, e.RateLimited, e.Published)
	}
	return s
}

// Flow runs the flow scenario.
func Flow(ctx context.Context, o FlowOptions) (*FlowResult, error) {
	if o.Path == "" {
		o.Path = "/ws"
	}
	if err := checkLoopback("--addr", o.Addr); err != nil {
		return nil, err
	}
	if o.Limit <= 0 {
		return nil, errors.New("loadtest: flow: --limit (the engine's max_messages_per_second) is required")
	}
	if o.Onsets == 0 {
		o.Onsets = 10
	}
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Idle == 0 {
		o.Idle = 1200 * time.Millisecond
	}
	if o.Max == 0 {
		o.Max = int(4*o.Limit) + 1000
	}
	if o.Batch == 0 {
		o.Batch = 1
	}
	if o.Batch < 1 || o.Batch > 10_000 {
		return nil, fmt.Errorf("loadtest: flow: --batch %d: want 1..10,000", o.Batch)
	}
	if o.Onsets < 1 || o.Onsets > 1000 || o.Idle < time.Duration(float64(time.Second)/o.Limit) {
		return nil, fmt.Errorf("loadtest: flow: --onsets %d (1..1000), --idle %v (long enough to refill the bucket)", o.Onsets, o.Idle)
	}
	room := "load.flow." + strconv.FormatInt(time.Now().UnixNano(), 36)
	c, err := dial(ctx, dialOptions{addr: o.Addr, path: o.Path, room: room, since: -1, timeout: 15 * time.Second, tls: o.TLS})
	if err != nil {
		return nil, err
	}
	defer unix.Close(c.fd)
	engine, err := engineDelta(ctx, o.Admin)
	if err != nil {
		return nil, err
	}
	res := &FlowResult{Scenario: "flow", Limit: o.Limit, Size: o.Size, Batch: o.Batch}
	fr := &flowRun{fd: c.fd, buf: make([]byte, 256<<10)}
	fr.frame, fr.tOff = buildPublish(room, o.Size)
	var pause, inflight, echo, resume, rate []float64
	for i := 0; i < o.Onsets; i++ {
		select { // the bucket refills (from the join, or the last onset)
		case <-time.After(o.Idle):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		on, err := fr.onset(o.Limit, o.Max, o.Batch)
		if err != nil {
			return nil, fmt.Errorf("loadtest: flow: onset %d: %w", i+1, err)
		}
		res.Onsets = append(res.Onsets, on)
		res.Limited += on.LimitedAnswers
		res.Dropped += on.Dropped
		if o.Log != nil {
			fmt.Fprintf(o.Log, "onset %2d: crossing at msg %d (%.3f ms), pause %.3f ms later, %d in flight (%d dropped; last echo %.3f ms after the pause), resume %.3f ms after 90%%, %.0f msgs/s\n",
				i+1, on.Crossing, on.CrossingAtMs, on.PauseMs, on.InFlight, on.Dropped, on.LastEchoMs, on.ResumeMs, on.FloodPerS)
		}
		if !on.Paused || on.Crossing == 0 {
			return res, fmt.Errorf("loadtest: flow: onset %d: no pause after %d messages (crossing %d): is flow_control on and --limit the engine's?", i+1, on.Sent, on.Crossing)
		}
		pause = append(pause, on.PauseMs)
		inflight = append(inflight, float64(on.InFlight))
		echo = append(echo, on.LastEchoMs)
		if on.Resumed {
			resume = append(resume, on.ResumeMs)
		}
		rate = append(rate, on.FloodPerS)
	}
	res.PauseMs, res.InFlight, res.LastEchoMs, res.ResumeMs, res.FloodPerS = statOf(pause), statOf(inflight), statOf(echo), statOf(resume), statOf(rate)
	res.Engine, err = engine()
	return res, err
}

// flowRun is the flow scenario's connection.
type flowRun struct {
	fd    int
	frame []byte
	tOff  int
	buf   []byte
	in    []byte

	// per onset, set by frameIn
	tPause, tResume int64
	lastEcho        int64 // highest message index echoed
	tLastEcho       int64
	accepted        int
	limited         int
	t               int64 // arrival time of the bytes being parsed
}

// onset floods until a pause, then reads until the last message's echo
// and the resume.
func (fr *flowRun) onset(limit float64, maxMsgs, batch int) (FlowOnset, error) {
	var on FlowOnset
	fr.tPause, fr.tResume, fr.lastEcho, fr.tLastEcho, fr.accepted, fr.limited = 0, 0, 0, 0, 0, 0
	sentAt := make([]int64, 0, maxMsgs+1)
	sentAt = append(sentAt, 0) // 1-based
	fr.drain(0)                // nothing may be left from the last onset
	out := make([]byte, 0, batch*len(fr.frame))
	for k := 1; k <= maxMsgs && fr.tPause == 0; {
		out = out[:0]
		first := k
		for ; k < first+batch && k <= maxMsgs; k++ {
			putTS(fr.frame[fr.tOff:], int64(k))
			out = append(out, fr.frame...)
		}
		if err := writeFD(fr.fd, out); err != nil { // the socket rarely fills: the engine reads
			return on, err
		}
		t := now()
		for ; first < k; first++ {
			sentAt = append(sentAt, t)
		}
		fr.drain(0)
	}
	K := len(sentAt) - 1
	on.Sent = K
	t1 := sentAt[1]
	if K > 1 {
		on.FloodPerS = float64(K-1) / (float64(sentAt[K]-t1) / 1e9)
	}
	for k := 1; k <= K; k++ {
		if float64(k) > limit/2+limit*float64(sentAt[k]-t1)/1e9 {
			on.Crossing = k
			on.CrossingAtMs = float64(sentAt[k]-t1) / 1e6
			break
		}
	}
	// Wait for the resume (by then the engine has handled everything in
	// flight: it resumes a quarter of a second after the pause at least).
	deadline := now() + int64(5*time.Second) + int64(float64(time.Second)*float64(K)/limit)
	for now() < deadline && fr.tResume == 0 {
		fr.drain(10)
	}
	fr.drain(0)
	on.Paused, on.Resumed = fr.tPause != 0, fr.tResume != 0
	on.Accepted, on.LimitedAnswers = fr.accepted, fr.limited
	if on.Crossing > 0 && on.Paused {
		on.PauseMs = float64(fr.tPause-sentAt[on.Crossing]) / 1e6
		on.InFlight = K - on.Crossing
		on.LastEchoMs = float64(fr.tLastEcho-fr.tPause) / 1e6
	}
	on.Dropped = K - fr.accepted
	if on.Resumed {
		at90 := t1 + int64((float64(fr.accepted)-limit/10)/limit*1e9)
		on.ResumeMs = float64(fr.tResume-at90) / 1e6
	}
	return on, nil
}

// drain reads what is there (waiting up to waitMs for something when
// waitMs > 0) and handles each frame.
func (fr *flowRun) drain(waitMs int) {
	if waitMs > 0 {
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fr.fd), Events: unix.POLLIN}}, waitMs)
	}
	for {
		n, _ := unix.Read(fr.fd, fr.buf)
		if n <= 0 {
			return
		}
		fr.t = now()
		reassemble(&fr.in, fr.buf[:n], fr.frameIn)
		if n < len(fr.buf) {
			return
		}
	}
}

func (fr *flowRun) frameIn(p []byte) {
	switch {
	case bytes.HasPrefix(p, msgPrefix):
		fr.accepted++
		if i := bytes.Index(p, tsMarker); i >= 0 {
			if k, ok := parseTS(p[i+len(tsMarker):]); ok && k > fr.lastEcho {
				fr.lastEcho, fr.tLastEcho = k, fr.t
			}
		}
	case bytes.HasPrefix(p, flowPause):
		if fr.tPause == 0 {
			fr.tPause = fr.t
		}
	case bytes.HasPrefix(p, flowResume):
		if fr.tPause != 0 && fr.tResume == 0 {
			fr.tResume = fr.t
		}
	case bytes.HasPrefix(p, errorPrefix):
		if bytes.Contains(p, []byte(`"rate_limited"`)) {
			fr.limited++
		}
	}
}
