package aimodel

import (
	"container/list"
	"crypto/sha256"
	"sync"
)

// LRU is a bounded least-recently-used cache. Safe for concurrent use.
type LRU[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front: most recent
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	k K
	v V
}

// NewLRU returns a cache of at most n entries (≥ 1).
func NewLRU[K comparable, V any](n int) *LRU[K, V] {
	return &LRU[K, V]{max: max(n, 1), ll: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value under k and marks it recently used.
func (c *LRU[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

// Put stores v under k, evicting the least recently used entry when full.
func (c *LRU[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).v = v
		c.ll.MoveToFront(e)
		return
	}
	if c.ll.Len() >= c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).k)
	}
	c.items[k] = c.ll.PushFront(&lruEntry[K, V]{k: k, v: v})
}

// Len returns the number of entries.
func (c *LRU[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
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
