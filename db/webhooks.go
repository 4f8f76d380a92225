package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/errs"
)

// Webhook delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// WebhookEndpoint is a URL a tenant subscribed to some event types.
type WebhookEndpoint struct {
	bun.BaseModel `bun:"table:webhook_endpoints,alias:we"`

	TenantID       string     `bun:"tenant_id,pk"`
	ID             string     `bun:"id,pk"`
	URL            string     `bun:"url,notnull"`
	Description    string     `bun:"description,notnull"`
	EventTypes     []string   `bun:"event_types,array,notnull"`
	Enabled        bool       `bun:"enabled,notnull"`
	SecretSealed   []byte     `bun:"secret_sealed,notnull"`
	FailingSince   *time.Time `bun:"failing_since"`
	DisabledAt     *time.Time `bun:"disabled_at"`
	DisabledReason *string    `bun:"disabled_reason"`
	CreatedAt      time.Time  `bun:"created_at,notnull"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull"`
}

// WebhookEvent is one event in the outbox, with the exact payload sent.
type WebhookEvent struct {
	bun.BaseModel `bun:"table:webhook_events,alias:wev"`

	TenantID  string          `bun:"tenant_id,pk"`
	ID        string          `bun:"id,pk"`
	Type      string          `bun:"type,notnull"`
	Payload   json.RawMessage `bun:"payload,type:json,notnull"`
	CreatedAt time.Time       `bun:"created_at,notnull"`
}

// WebhookDelivery is one event's delivery to one endpoint.
type WebhookDelivery struct {
	bun.BaseModel `bun:"table:webhook_deliveries,alias:wd"`

	TenantID         string     `bun:"tenant_id,pk"`
	ID               string     `bun:"id,pk"`
	EndpointID       string     `bun:"endpoint_id,notnull"`
	EventID          string     `bun:"event_id,notnull"`
	EventType        string     `bun:"event_type,notnull"`
	Status           string     `bun:"status,notnull"`
	Attempts         int        `bun:"attempts,notnull"`
	LastResponseCode *int       `bun:"last_response_code"`
	LastError        *string    `bun:"last_error"`
	LastAttemptAt    *time.Time `bun:"last_attempt_at"`
	NextAttemptAt    *time.Time `bun:"next_attempt_at"`
	DeliveredAt      *time.Time `bun:"delivered_at"`
	CreatedAt        time.Time  `bun:"created_at,notnull"`
	UpdatedAt        time.Time  `bun:"updated_at,notnull"`
}

// InsertWebhookEndpoint stores a new endpoint.
func InsertWebhookEndpoint(ctx context.Context, idb bun.IDB, e *WebhookEndpoint) error {
	if _, err := idb.NewInsert().Model(e).Exec(ctx); err != nil {
		return fmt.Errorf("insert webhook endpoint: %w", mapErr(err))
	}
	return nil
}

// GetWebhookEndpoint loads one endpoint of a tenant; lock takes a row lock.
func GetWebhookEndpoint(ctx context.Context, idb bun.IDB, tenantID, id string, lock bool) (*WebhookEndpoint, error) {
	e := new(WebhookEndpoint)
	q := idb.NewSelect().Model(e).Where("tenant_id = ? AND id = ?", tenantID, id)
	if lock {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return e, nil
}

// ListWebhookEndpoints returns a tenant's endpoints, oldest first;
// enabledOnly keeps the enabled ones.
func ListWebhookEndpoints(ctx context.Context, idb bun.IDB, tenantID string, enabledOnly bool) ([]WebhookEndpoint, error) {
	var out []WebhookEndpoint
	q := idb.NewSelect().Model(&out).Where("tenant_id = ?", tenantID).Order("id")
	if enabledOnly {
		q = q.Where("enabled")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// CountWebhookEndpoints counts a tenant's endpoints.
func CountWebhookEndpoints(ctx context.Context, idb bun.IDB, tenantID string) (int, error) {
	n, err := idb.NewSelect().Model((*WebhookEndpoint)(nil)).Where("tenant_id = ?", tenantID).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count webhook endpoints: %w", err)
	}
	return int(n), nil
}

// UpdateWebhookEndpoint writes the given columns of e (and updated_at).
func UpdateWebhookEndpoint(ctx context.Context, idb bun.IDB, e *WebhookEndpoint, columns ...string) error {
	columns = append(columns, "updated_at")
	res, err := idb.NewUpdate().Model(e).Column(columns...).
		Where("tenant_id = ? AND id = ?", e.TenantID, e.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update webhook endpoint: %w", mapErr(err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errs.ErrNotFound
	}
	return nil
}

// DeleteWebhookEndpoint deletes an endpoint and its deliveries.
func DeleteWebhookEndpoint(ctx context.Context, idb bun.IDB, tenantID, id string) (bool, error) {
	res, err := idb.NewDelete().Model((*WebhookEndpoint)(nil)).
		Where("tenant_id = ? AND id = ?", tenantID, id).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("delete webhook endpoint: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// InsertWebhookEvent stores an event in the outbox.
func InsertWebhookEvent(ctx context.Context, idb bun.IDB, ev *WebhookEvent) error {
	if _, err := idb.NewInsert().Model(ev).Exec(ctx); err != nil {
		return fmt.Errorf("insert webhook event: %w", mapErr(err))
	}
	return nil
}

// GetWebhookEvent loads one event of a tenant.
func GetWebhookEvent(ctx context.Context, idb bun.IDB, tenantID, id string) (*WebhookEvent, error) {
	ev := new(WebhookEvent)
	if err := idb.NewSelect().Model(ev).Where("tenant_id = ? AND id = ?", tenantID, id).Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return ev, nil
}

// InsertWebhookDeliveries stores new deliveries.
func InsertWebhookDeliveries(ctx context.Context, idb bun.IDB, ds []WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	if _, err := idb.NewInsert().Model(&ds).Exec(ctx); err != nil {
		return fmt.Errorf("insert webhook deliveries: %w", mapErr(err))
	}
	return nil
}

// GetWebhookDelivery loads one delivery of a tenant.
func GetWebhookDelivery(ctx context.Context, idb bun.IDB, tenantID, id string) (*WebhookDelivery, error) {
	d := new(WebhookDelivery)
	if err := idb.NewSelect().Model(d).Where("tenant_id = ? AND id = ?", tenantID, id).Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return d, nil
}

// ListWebhookDeliveries returns a page of an endpoint's deliveries, newest
// first, and their total.
func ListWebhookDeliveries(ctx context.Context, idb bun.IDB, tenantID, endpointID string, limit, offset int) ([]WebhookDelivery, int, error) {
	var out []WebhookDelivery
	n, err := idb.NewSelect().Model(&out).
		Where("tenant_id = ? AND endpoint_id = ?", tenantID, endpointID).
		OrderExpr("created_at DESC, id DESC").Limit(int64(limit)).Offset(int64(offset)).
		ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return out, int(n), nil
}

// ClaimWebhookDelivery takes a pending delivery for one attempt: it must
// still be pending, at attempt number attempt and due by now. Its
// next_attempt_at moves to leaseUntil so the sweep leaves it alone while
// the attempt runs (and picks it up again if the worker dies). It returns
// nil when there is nothing to do.
func ClaimWebhookDelivery(ctx context.Context, idb bun.IDB, tenantID, id string, attempt int, now, leaseUntil time.Time) (*WebhookDelivery, error) {
	var out []WebhookDelivery
	err := idb.NewRaw(`
		UPDATE webhook_deliveries SET next_attempt_at = ?4
		WHERE tenant_id = ?0 AND id = ?1 AND status = 'pending' AND attempts = ?2 AND next_attempt_at <= ?3
		RETURNING *`, tenantID, id, attempt, now, leaseUntil).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("claim webhook delivery: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &out[0], nil
}

// UpdateWebhookDelivery writes the given columns of d (and updated_at).
func UpdateWebhookDelivery(ctx context.Context, idb bun.IDB, d *WebhookDelivery, columns ...string) error {
	columns = append(columns, "updated_at")
	if _, err := idb.NewUpdate().Model(d).Column(columns...).
		Where("tenant_id = ? AND id = ?", d.TenantID, d.ID).Exec(ctx); err != nil {
		return fmt.Errorf("update webhook delivery: %w", err)
	}
	return nil
}

// FailPendingWebhookDeliveries marks an endpoint's pending deliveries failed
// (the endpoint was disabled).
func FailPendingWebhookDeliveries(ctx context.Context, idb bun.IDB, tenantID, endpointID, reason string, now time.Time) error {
	_, err := idb.NewUpdate().Model((*WebhookDelivery)(nil)).
		Set("status = ?", DeliveryFailed).Set("last_error = ?", reason).
		Set("next_attempt_at = NULL").Set("updated_at = ?", now).
		Where("tenant_id = ? AND endpoint_id = ? AND status = ?", tenantID, endpointID, DeliveryPending).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("fail pending webhook deliveries: %w", err)
	}
	return nil
}

// DueWebhookDelivery names a pending delivery for the sweep.
type DueWebhookDelivery struct {
	ID            string    `bun:"id"`
	Attempts      int       `bun:"attempts"`
	NextAttemptAt time.Time `bun:"next_attempt_at"`
}

// DueWebhookDeliveries returns a tenant's pending deliveries due before
// the given time.
func DueWebhookDeliveries(ctx context.Context, idb bun.IDB, tenantID string, before time.Time, limit int) ([]DueWebhookDelivery, error) {
	var out []DueWebhookDelivery
	err := idb.NewSelect().Model((*WebhookDelivery)(nil)).
		Column("id", "attempts", "next_attempt_at").
		Where("tenant_id = ? AND status = ? AND next_attempt_at <= ?", tenantID, DeliveryPending, before).
		Order("next_attempt_at").Limit(int64(limit)).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("due webhook deliveries: %w", err)
	}
	return out, nil
}
