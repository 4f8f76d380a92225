package tenants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// TestKeyCache: a cached key answers without Postgres until revoked
// through the store, a wrong key is never cached, and without a TTL every
// lookup reaches Postgres.
func TestKeyCache(t *testing.T) {
	_, bdb := testenv.DB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := &tenants.Store{DB: bdb, CacheTTL: 5 * time.Second, Now: func() time.Time { return clock }}
	ten, err := s.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, ten.ID, []string{tenants.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, k.Key)
	if err != nil || p.TenantID != ten.ID || p.KeyID != k.ID {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	// Revoked behind the store's back: the cache still answers within its
	// TTL, a store without a cache sees the revocation at once.
	other := &tenants.Store{DB: bdb, Now: s.Now}
	if err := other.RevokeKey(ctx, ten.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, k.Key); err != nil {
		t.Errorf("cached key within its TTL: %v", err)
	}
	if _, err := other.Authenticate(ctx, k.Key); !errors.Is(err, errs.ErrUnauthorized) {
		t.Errorf("uncached revoked key: %v, want unauthorized", err)
	}
	clock = clock.Add(6 * time.Second)
	if _, err := s.Authenticate(ctx, k.Key); !errors.Is(err, errs.ErrUnauthorized) {
		t.Errorf("revoked key after the TTL: %v, want unauthorized", err)
	}

	// Revoking through the caching store takes effect at once.
	k2, err := s.CreateKey(ctx, ten.ID, []string{tenants.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, k2.Key); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, ten.ID, k2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, k2.Key); !errors.Is(err, errs.ErrUnauthorized) {
		t.Errorf("key revoked through the caching store: %v, want unauthorized", err)
	}
	if _, err := s.Authenticate(ctx, k2.Key+"x"); !errors.Is(err, errs.ErrUnauthorized) {
		t.Errorf("wrong key: %v, want unauthorized", err)
	}
}
