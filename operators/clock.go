package operators

import (
	"sync/atomic"
	"time"
)

// Clock is a time source in Unix nanoseconds. Every time-based operator
// reads time only through its flow's Clock, so tests swap in a FakeClock
// and drive windows, debounces and retries without sleeping.
type Clock interface {
	Now() int64
}

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now returns time.Now() in Unix nanoseconds.
func (SystemClock) Now() int64 { return time.Now().UnixNano() }

// FakeClock is a Clock that moves only when told. Safe from any goroutine.
// The zero value reads 0; NewFakeClock starts it elsewhere.
type FakeClock struct{ t atomic.Int64 }

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	c := new(FakeClock)
	c.t.Store(start.UnixNano())
	return c
}

// Now returns the fake time.
func (c *FakeClock) Now() int64 { return c.t.Load() }

// Set moves the clock to t (Unix nanoseconds).
func (c *FakeClock) Set(t int64) { c.t.Store(t) }

// Add moves the clock forward by d and returns the new time.
func (c *FakeClock) Add(d time.Duration) int64 { return c.t.Add(int64(d)) }
