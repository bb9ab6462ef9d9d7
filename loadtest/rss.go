package loadtest

import "math"

// RSSSample is the server's resident set (VmRSS) at T seconds after the
// measured window began (negative: during the warm-up).
type RSSSample struct {
	T       float64 `json:"t_s"`
	KiB     int64   `json:"kib"`
	HeapKiB int64   `json:"heap_kib,omitempty"` // with --admin: the engine's Go heap in use (its latest metrics snapshot)
}

// RSSSummary describes the server's RSS over the measured window: the
// first and last samples in it, the highest, and the slope of a
// least-squares line through the samples of its last FitSeconds (MiB per
// minute: flat memory is a slope near 0).
type RSSSummary struct {
	StartMiB       float64 `json:"start_mib"`
	EndMiB         float64 `json:"end_mib"`
	MaxMiB         float64 `json:"max_mib"`
	FitSeconds     float64 `json:"fit_s"`
	FitSamples     int     `json:"fit_samples"`
	SlopeMiBPerMin float64 `json:"slope_mib_per_min"`
	FitRMSMiB      float64 `json:"fit_rms_mib"` // residuals' root mean square: the noise around the line
	// With --admin: the lowest heap in use in the window's first and last
	// 20 s (the floor of the GC sawtooth: what stays live) and the highest.
	HeapFloorStartMiB float64 `json:"heap_floor_start_mib,omitempty"`
	HeapFloorEndMiB   float64 `json:"heap_floor_end_mib,omitempty"`
	HeapMaxMiB        float64 `json:"heap_max_mib,omitempty"`
	// ByMinuteMiB is the mean RSS of each whole minute since the first
	// sample, warm-up included: the curve from the load's start (the Go
	// heap reaching its working size over its first GC cycles) to the
	// end of the window.
	ByMinuteMiB []float64 `json:"by_minute_mib,omitempty"`
}

// summarizeRSS summarizes the samples of the window [0, window] seconds,
// fitting over its last fit seconds (the whole window when shorter).
func summarizeRSS(samples []RSSSample, window, fit float64) *RSSSummary {
	var in []RSSSample
	for _, s := range samples {
		if s.T >= 0 && s.T <= window+0.5 {
			in = append(in, s)
		}
	}
	if len(in) == 0 {
		return nil
	}
	const mib = 1024.0
	sum := &RSSSummary{StartMiB: float64(in[0].KiB) / mib, EndMiB: float64(in[len(in)-1].KiB) / mib}
	for _, s := range in {
		sum.MaxMiB = max(sum.MaxMiB, float64(s.KiB)/mib)
	}
	from := window - fit
	var xs, ys []float64
	for _, s := range in {
		if s.T >= from {
			xs = append(xs, s.T)
			ys = append(ys, float64(s.KiB)/mib)
		}
	}
	sum.FitSeconds, sum.FitSamples = math.Min(fit, window), len(xs)
	floor := func(lo, hi float64) float64 {
		m := math.Inf(1)
		for _, s := range in {
			if s.HeapKiB > 0 && s.T >= lo && s.T <= hi {
				m = math.Min(m, float64(s.HeapKiB)/mib)
			}
		}
		if math.IsInf(m, 1) {
			return 0
		}
		return m
	}
	span := math.Min(20, window/3)
	sum.HeapFloorStartMiB, sum.HeapFloorEndMiB = floor(0, span), floor(window-span, window+0.5)
	for _, s := range in {
		sum.HeapMaxMiB = math.Max(sum.HeapMaxMiB, float64(s.HeapKiB)/mib)
	}
	slope, rms := leastSquares(xs, ys)
	sum.SlopeMiBPerMin, sum.FitRMSMiB = slope*60, rms
	sum.ByMinuteMiB = byMinute(samples, window)
	return sum
}

// byMinute returns the mean RSS (MiB) of each whole minute from the first
// sample to the window's end.
func byMinute(samples []RSSSample, window float64) []float64 {
	if len(samples) == 0 {
		return nil
	}
	t0 := samples[0].T
	var out []float64
	var sum float64
	n, minute := 0, 0
	for _, s := range samples {
		if s.T > window+0.5 {
			break
		}
		m := int((s.T - t0) / 60)
		if m != minute {
			if n > 0 && n >= 50 { // a whole minute of 1 s samples
				out = append(out, sum/float64(n))
			}
			sum, n, minute = 0, 0, m
		}
		sum += float64(s.KiB) / 1024
		n++
	}
	if n >= 50 {
		out = append(out, sum/float64(n))
	}
	return out
}

// leastSquares fits y = a + b·x and returns b and the residuals' RMS.
func leastSquares(xs, ys []float64) (slope, rms float64) {
	n := float64(len(xs))
	if len(xs) < 2 {
		return 0, 0
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, 0
	}
	slope = sxy / sxx
	a := my - slope*mx
	var ss float64
	for i := range xs {
		r := ys[i] - (a + slope*xs[i])
		ss += r * r
	}
	return slope, math.Sqrt(ss / n)
}
