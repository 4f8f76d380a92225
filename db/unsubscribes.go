package db

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// GetSurveyByUnsubscribe loads the tenant's survey whose unsubscribe secret
// has this hash.
func GetSurveyByUnsubscribe(ctx context.Context, idb bun.IDB, tenantID string, hash []byte) (*Survey, error) {
	s := new(Survey)
	err := idb.NewSelect().Model(s).Apply(byTenant(tenantID)).Where("s.unsubscribe_hash = ?", hash).Scan(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return s, nil
}

// InsertUnsubscribe records that email opted out of the tenant's surveys;
// a repeat keeps the first record.
func InsertUnsubscribe(ctx context.Context, idb bun.IDB, u *Unsubscribe) error {
	u.Email = strings.ToLower(u.Email)
	_, err := idb.NewInsert().Model(u).On("CONFLICT (tenant_id, email) DO NOTHING").Exec(ctx)
	if err != nil {
		return fmt.Errorf("insert unsubscribe: %w", mapErr(err))
	}
	return nil
}

// IsUnsubscribed reports whether email opted out of the tenant's surveys.
func IsUnsubscribed(ctx context.Context, idb bun.IDB, tenantID, email string) (bool, error) {
	n, err := idb.NewSelect().Model((*Unsubscribe)(nil)).
		Where("u.tenant_id = ? AND u.email = ?", tenantID, strings.ToLower(email)).
		Count(ctx)
	if err != nil {
		return false, fmt.Errorf("check unsubscribe: %w", err)
	}
	return n > 0, nil
}
