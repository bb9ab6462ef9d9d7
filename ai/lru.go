package ai

// LRU is a map bounded in size and in age: at most Max entries (the least
// recently used is evicted first), each valid for TTL after it was put.
// Times are the caller's (Unix nanoseconds, any monotonic clock), so a
// test clock works. Entries are recycled: Put allocates nothing once the
// cache is full. Not safe for concurrent use.
type LRU[K comparable, V any] struct {
	max  int
	ttl  int64
	m    map[K]*lruEntry[K, V]
	root lruEntry[K, V] // sentinel: root.next is the most recent
	free *lruEntry[K, V]
}

type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	expires    int64
	prev, next *lruEntry[K, V]
}

// NewLRU returns a cache of at most size entries (at least 1) valid for
// ttl nanoseconds (<= 0: until evicted).
func NewLRU[K comparable, V any](size int, ttl int64) *LRU[K, V] {
	c := &LRU[K, V]{max: max(size, 1), ttl: ttl, m: make(map[K]*lruEntry[K, V])}
	c.root.next, c.root.prev = &c.root, &c.root
	return c
}

// Len returns the number of entries (expired ones included until they
// are looked up or evicted).
func (c *LRU[K, V]) Len() int { return len(c.m) }

func (c *LRU[K, V]) unlink(e *lruEntry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *LRU[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev, e.next = &c.root, c.root.next
	c.root.next.prev = e
	c.root.next = e
}

func (c *LRU[K, V]) remove(e *lruEntry[K, V]) {
	c.unlink(e)
	delete(c.m, e.key)
	var zeroK K
	var zero V
	e.key, e.val, e.next, e.prev = zeroK, zero, c.free, nil
	c.free = e
}

// Get returns key's value if it is there and not expired at now (an
// expired entry is removed), and marks it most recently used.
func (c *LRU[K, V]) Get(key K, now int64) (V, bool) {
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	if c.ttl > 0 && now >= e.expires {
		c.remove(e)
		var zero V
		return zero, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.val, true
}

// Put sets key to v, valid until now+TTL, evicting the least recently
// used entry when the cache is full.
func (c *LRU[K, V]) Put(key K, v V, now int64) {
	if e, ok := c.m[key]; ok {
		e.val, e.expires = v, now+c.ttl
		c.unlink(e)
		c.pushFront(e)
		return
	}
	if len(c.m) >= c.max {
		c.remove(c.root.prev)
	}
	e := c.free
	if e != nil {
		c.free = e.next
	} else {
		e = new(lruEntry[K, V])
	}
	e.key, e.val, e.expires = key, v, now+c.ttl
	c.m[key] = e
	c.pushFront(e)
}
