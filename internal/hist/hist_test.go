package hist

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestIndexAndUpperAgree(t *testing.T) {
	for _, ns := range []int64{0, 1, 1023, 1024, 1025, 1100, 2047, 2048, 5000, 1e6, 1e9, 1 << 35, 1 << 36, 1 << 40} {
		i := index(ns)
		if ns >= 1<<minExp && ns < 1<<maxExp {
			lo := Upper(i - 1)
			if !(lo <= ns && ns < Upper(i)) {
				t.Errorf("ns %d in bucket %d [%d, %d)", ns, i, lo, Upper(i))
			}
		}
	}
	for i := 1; i < Buckets-1; i++ {
		if Upper(i) <= Upper(i-1) {
			t.Fatalf("bounds not increasing at %d", i)
		}
	}
}

func TestQuantilesWithinABucket(t *testing.T) {
	var h H
	var vals []int64
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		v := int64(r.ExpFloat64() * 200000) // mean 200 µs
		vals = append(vals, v)
		h.Record(v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	var s Snapshot
	h.AddTo(&s)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := s.Quantile(q)
		if exact > 1024 && (float64(got) < float64(exact)*0.93 || float64(got) > float64(exact)*1.07) {
			t.Errorf("q%v: got %d, exact %d", q, got, exact)
		}
	}
	if s.Max != vals[len(vals)-1] || s.Total() != 100000 {
		t.Errorf("max %d total %d", s.Max, s.Total())
	}
	c, sum := s.Cumulative([]int64{1e5, 1e6, 1e12})
	if c[2] != 100000 || c[0] > c[1] || sum <= 0 {
		t.Errorf("cumulative %v sum %v", c, sum)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h H
	for i := 0; i < b.N; i++ {
		h.Record(int64(i & 0xfffff))
	}
}
