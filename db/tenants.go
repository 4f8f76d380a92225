package db

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/errs"
)

// InsertTenant stores a tenant with its default CSAT config.
func InsertTenant(ctx context.Context, idb bun.IDB, t *Tenant) error {
	ctx = WithTenant(ctx, t.ID) // the config row is the new tenant's
	return idb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(t).Returning("*").Exec(ctx); err != nil {
			return fmt.Errorf("insert tenant: %w", mapErr(err))
		}
		cfg := &Config{TenantID: t.ID, Enabled: true, SurveyDelayHours: 2, SurveyExpiryDays: 7}
		if _, err := tx.NewInsert().Model(cfg).Exec(ctx); err != nil {
			return fmt.Errorf("insert config: %w", mapErr(err))
		}
		return nil
	})
}

// GetTenant loads one tenant by id.
func GetTenant(ctx context.Context, idb bun.IDB, id string) (*Tenant, error) {
	t := new(Tenant)
	if err := idb.NewSelect().Model(t).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return t, nil
}

// ListTenantIDs returns every tenant id, for system work (the sweep) that
// then runs tenant-scoped queries one tenant at a time.
func ListTenantIDs(ctx context.Context, idb bun.IDB) ([]string, error) {
	var ids []string
	if err := idb.NewSelect().Model((*Tenant)(nil)).Column("id").Order("id").Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ids, nil
}

// InsertAPIKey stores a key; only its hash is kept.
func InsertAPIKey(ctx context.Context, idb bun.IDB, k *APIKey) error {
	ctx = WithTenant(ctx, k.TenantID)
	if _, err := idb.NewInsert().Model(k).Returning("created_at").Exec(ctx); err != nil {
		return fmt.Errorf("insert api key: %w", mapErr(err))
	}
	return nil
}

// FindAPIKeyByHash returns the unrevoked key with this hash. The tenant is
// not known yet: the api_keys_lookup policy shows this one row, by its hash.
func FindAPIKeyByHash(ctx context.Context, idb bun.IDB, hash []byte) (*APIKey, error) {
	ctx = withAPIKeyHash(ctx, hash)
	k := new(APIKey)
	err := idb.NewSelect().Model(k).
		Where("key_hash = ?", hash).
		Where("revoked_at IS NULL").
		Scan(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return k, nil
}

// TouchAPIKey records use of a key at most once a minute, so a busy key
// does not turn every read into a write.
func TouchAPIKey(ctx context.Context, idb bun.IDB, tenantID, id string, now time.Time) error {
	ctx = WithTenant(ctx, tenantID)
	_, err := idb.NewUpdate().Model((*APIKey)(nil)).
		Set("last_used_at = ?", now).
		Where("tenant_id = ? AND id = ?", tenantID, id).
		Where("last_used_at IS NULL OR last_used_at < ?", now.Add(-time.Minute)).
		Exec(ctx)
	return err
}

// RevokeAPIKey revokes a key of the tenant.
func RevokeAPIKey(ctx context.Context, idb bun.IDB, tenantID, id string, now time.Time) error {
	ctx = WithTenant(ctx, tenantID)
	res, err := idb.NewUpdate().Model((*APIKey)(nil)).
		Set("revoked_at = ?", now).
		Where("tenant_id = ? AND id = ? AND revoked_at IS NULL", tenantID, id).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	return nil
}

// GetConfig loads the tenant's CSAT config.
func GetConfig(ctx context.Context, idb bun.IDB, tenantID string) (*Config, error) {
	c := new(Config)
	if err := idb.NewSelect().Model(c).Where("tenant_id = ?", tenantID).Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return c, nil
}

// GetConfigForUpdate loads the config and locks its row until the
// transaction ends, so concurrent partial updates do not lose fields.
func GetConfigForUpdate(ctx context.Context, tx bun.Tx, tenantID string) (*Config, error) {
	c := new(Config)
	if err := tx.NewSelect().Model(c).Where("tenant_id = ?", tenantID).For("UPDATE").Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return c, nil
}

// UpdateConfig writes every field of c.
func UpdateConfig(ctx context.Context, idb bun.IDB, c *Config) error {
	_, err := idb.NewUpdate().Model(c).
		ExcludeColumn("tenant_id").
		Where("tenant_id = ?", c.TenantID).
		Returning("updated_at").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("update config: %w", mapErr(err))
	}
	return nil
}
