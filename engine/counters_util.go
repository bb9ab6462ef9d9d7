package engine

import "sync/atomic"

// uint64Counter is a counter with one writer: Inc is a load and a store
// (no locked read-modify-write); Load is safe from anywhere.
type uint64Counter struct{ v atomic.Uint64 }

func (c *uint64Counter) Inc()         { c.v.Store(c.v.Load() + 1) }
func (c *uint64Counter) Load() uint64 { return c.v.Load() }

// int64Gauge is a gauge with one writer.
type int64Gauge struct{ v atomic.Int64 }

func (g *int64Gauge) Add(n int64) { g.v.Store(g.v.Load() + n) }
func (g *int64Gauge) Load() int64 { return g.v.Load() }
