package aimodel

import (
	"crypto/sha256"
	"sync"

	"streamd/ai"
)

// LRU is ai.LRU (no expiry) behind a mutex: a bounded
// least-recently-used cache safe for concurrent use (the embed op's
// workers share it).
type LRU[K comparable, V any] struct {
	mu sync.Mutex
	c  *ai.LRU[K, V]
}

// NewLRU returns a cache of at most n entries (≥ 1).
func NewLRU[K comparable, V any](n int) *LRU[K, V] {
	return &LRU[K, V]{c: ai.NewLRU[K, V](n, 0)}
}

// Get returns the value under k and marks it recently used.
func (c *LRU[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.Get(k, 0)
}

// Put stores v under k, evicting the least recently used entry when full.
func (c *LRU[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Put(k, v, 0)
}

// Len returns the number of entries.
func (c *LRU[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.Len()
}

// ContentKey is the cache key of an embedding: SHA-256 of the model, a
// zero byte and the text.
func ContentKey(model, text string) [32]byte {
	h := sha256.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(text))
	var k [32]byte
	h.Sum(k[:0])
	return k
}
