package ring_test

import (
	"fmt"

	"streamd/ring"
)

// A producer goroutine streams words to a consumer, which reads until the
// producer closes the ring.
func ExampleSPSC() {
	r := ring.New[string](4)
	go func() {
		for _, w := range []string{"one", "two", "three", "four", "five", "six"} {
			r.Push(w) // blocks while the ring is full
		}
		r.Close()
	}()
	for {
		w, ok := r.Pop() // blocks while the ring is empty
		if !ok {
			break // closed and drained
		}
		fmt.Println(w)
	}
	// Output:
	// one
	// two
	// three
	// four
	// five
	// six
}

// Large items can be built and consumed in place, without copying.
func ExampleSPSC_Reserve() {
	type frame struct {
		seq     int
		payload [4096]byte
	}
	r := ring.New[frame](8)

	// Producer: fill the next free slot in place, then publish it.
	if f := r.Reserve(); f != nil {
		f.seq = 1
		copy(f.payload[:], "hello")
		r.Commit()
	}

	// Consumer: read the oldest slot in place, then free it.
	if f := r.Peek(); f != nil {
		fmt.Println(f.seq, string(f.payload[:5]))
		r.Release()
	}
	fmt.Println(r.Len())
	// Output:
	// 1 hello
	// 0
}
