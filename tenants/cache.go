package tenants

import (
	"sync"
	"time"
)

// keyCache remembers recently verified API keys for a few seconds, so a
// busy dashboard's every request does not pay two extra statements (the
// key lookup and the last-used touch) before its own query. Only keys that
// verified are kept (a wrong key always reaches Postgres), by hash, never
// the key itself. A key revoked through this process's Store is dropped at
// once; revoked elsewhere, it works here for at most the TTL.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]cachedKey
}

type cachedKey struct {
	p       Principal
	until   time.Time
	touched time.Time // last time this process recorded last_used_at
}

// maxCachedKeys bounds the memory: at the bound the cache starts over.
const maxCachedKeys = 10_000

func (c *keyCache) get(hash []byte, now time.Time) (cachedKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[string(hash)]
	if !ok || now.After(e.until) {
		return cachedKey{}, false
	}
	return e, true
}

func (c *keyCache) put(hash []byte, e cachedKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedKeys {
		c.entries = map[string]cachedKey{}
	}
	c.entries[string(hash)] = e
}

// dropKey forgets a key by id (on revocation).
func (c *keyCache) dropKey(tenantID, keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.p.TenantID == tenantID && e.p.KeyID == keyID {
			delete(c.entries, h)
		}
	}
}
