// Package tenants owns tenants, API keys, scopes and the tenant carried in
// a request's context.
package tenants

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/secret"
)

// Scopes an API key can hold.
const (
	ScopeRead        = "csat:read"
	ScopeWrite       = "csat:write"
	ScopeConfigWrite = "config:write"
	ScopeWebhooks    = "webhooks:write"
)

// AllScopes lists every scope, in the order they are documented.
var AllScopes = []string{ScopeRead, ScopeWrite, ScopeConfigWrite, ScopeWebhooks}

// KeyPrefix starts every API key.
const KeyPrefix = "ak_live_"

// Principal is who a request acts for: a tenant, through one key.
type Principal struct {
	TenantID string
	KeyID    string
	Scopes   []string
}

// Has reports whether the principal holds scope.
func (p Principal) Has(scope string) bool { return slices.Contains(p.Scopes, scope) }

type ctxKey int

const (
	principalKey ctxKey = iota
	slotKey
)

// NewContext returns ctx carrying p. It also fills the request's Slot,
// if an outer middleware put one in ctx.
func NewContext(ctx context.Context, p Principal) context.Context {
	if s, ok := ctx.Value(slotKey).(*Slot); ok {
		s.tenantID.Store(&p.TenantID)
	}
	return context.WithValue(ctx, principalKey, p)
}

// Slot lets an outer middleware (the request log) learn the tenant that an
// inner one authenticated: contexts only flow inwards, so the outer one
// hands down this holder and reads it once the request is done.
type Slot struct{ tenantID atomic.Pointer[string] }

// WithSlot returns ctx carrying a fresh Slot.
func WithSlot(ctx context.Context) (context.Context, *Slot) {
	s := &Slot{}
	return context.WithValue(ctx, slotKey, s), s
}

// TenantID is the tenant authenticated in the request, or "".
func (s *Slot) TenantID() string {
	if p := s.tenantID.Load(); p != nil {
		return *p
	}
	return ""
}

// FromContext returns the principal of ctx; a missing tenant is an error,
// never "all tenants".
func FromContext(ctx context.Context) (Principal, error) {
	p, ok := ctx.Value(principalKey).(Principal)
	if !ok || p.TenantID == "" {
		return Principal{}, errs.ErrNoTenant
	}
	return p, nil
}

// TenantID returns the tenant id of ctx or ErrNoTenant.
func TenantID(ctx context.Context) (string, error) {
	p, err := FromContext(ctx)
	return p.TenantID, err
}

// Require returns the tenant id of ctx when its principal holds scope.
func Require(ctx context.Context, scope string) (string, error) {
	p, err := FromContext(ctx)
	if err != nil {
		return "", err
	}
	if !p.Has(scope) {
		return "", errs.New(errs.Forbidden, "this API key lacks the %s scope", scope)
	}
	return p.TenantID, nil
}

// Store manages tenants and keys in Postgres.
type Store struct {
	DB  *bun.DB
	Now func() time.Time
	// CacheTTL keeps verified keys in memory this long (see keyCache);
	// zero looks every key up every time.
	CacheTTL time.Duration
	cache    keyCache
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now().UTC()
}

// CreateTenant creates a tenant with the default CSAT config.
func (s *Store) CreateTenant(ctx context.Context, name string) (*db.Tenant, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, errs.Validation(map[string]string{"name": "must be 1-200 characters"})
	}
	t := &db.Tenant{ID: secret.ID("ten_"), Name: name}
	if err := db.InsertTenant(ctx, s.DB, t); err != nil {
		return nil, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// NewKey is a freshly created key; Key is shown once and never stored.
type NewKey struct {
	ID     string   `json:"id"`
	Key    string   `json:"key"`
	Prefix string   `json:"prefix"`
	Scopes []string `json:"scopes"`
}

// ParseScopes validates a comma-separated scope list.
func ParseScopes(list string) ([]string, error) {
	var out []string
	for _, sc := range strings.Split(list, ",") {
		sc = strings.TrimSpace(sc)
		if sc == "" {
			continue
		}
		if !slices.Contains(AllScopes, sc) {
			return nil, errs.New(errs.Invalid, "unknown scope %q (known: %s)", sc, strings.Join(AllScopes, ", "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, errs.New(errs.Invalid, "at least one scope is required")
	}
	return out, nil
}

// CreateKey makes an API key for the tenant with the given scopes.
func (s *Store) CreateKey(ctx context.Context, tenantID string, scopes []string) (*NewKey, error) {
	if _, err := db.GetTenant(ctx, s.DB, tenantID); err != nil {
		return nil, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	key := KeyPrefix + secret.Token(24) // 192 bits, 32 characters
	k := &db.APIKey{
		TenantID: tenantID,
		ID:       secret.ID("key_"),
		Prefix:   key[:len(KeyPrefix)+4],
		KeyHash:  secret.Hash(key),
		Scopes:   scopes,
	}
	if err := db.InsertAPIKey(ctx, s.DB, k); err != nil {
		return nil, err
	}
	return &NewKey{ID: k.ID, Key: key, Prefix: k.Prefix, Scopes: scopes}, nil
}

// Authenticate resolves an API key to its principal. The lookup is by
// hash, so its time does not depend on how much of a guess was right.
func (s *Store) Authenticate(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) > 200 {
		return Principal{}, errs.ErrUnauthorized
	}
	hash := secret.Hash(key)
	now := s.now()
	if s.CacheTTL > 0 {
		if e, ok := s.cache.get(hash, now); ok {
			if now.Sub(e.touched) >= time.Minute {
				_ = db.TouchAPIKey(ctx, s.DB, e.p.TenantID, e.p.KeyID, now) // best effort
				e.touched = now
				s.cache.put(hash, e)
			}
			return e.p, nil
		}
	}
	k, err := db.FindAPIKeyByHash(ctx, s.DB, hash)
	if err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			return Principal{}, errs.ErrUnauthorized
		}
		return Principal{}, fmt.Errorf("find api key: %w", err)
	}
	if !secret.Equal(k.KeyHash, hash) {
		return Principal{}, errs.ErrUnauthorized
	}
	_ = db.TouchAPIKey(ctx, s.DB, k.TenantID, k.ID, now) // best effort
	p := Principal{TenantID: k.TenantID, KeyID: k.ID, Scopes: k.Scopes}
	if s.CacheTTL > 0 {
		s.cache.put(hash, cachedKey{p: p, until: now.Add(s.CacheTTL), touched: now})
	}
	return p, nil
}

// RevokeKey revokes one of the tenant's keys.
func (s *Store) RevokeKey(ctx context.Context, tenantID, keyID string) error {
	err := db.RevokeAPIKey(ctx, s.DB, tenantID, keyID, s.now())
	s.cache.dropKey(tenantID, keyID) // after: a lookup racing the revoke may have cached it
	return err
}
