package db

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// WebhookTargets are a tenant's enabled webhook endpoints as one of a
// transaction's own write-path statements read them, in a column of its
// own: the outbox (webhooks.Service.InTxMany) then picks an event's
// deliveries without a lookup, and a round trip, of its own. It is no
// cache: the endpoints come from the transaction itself, as the lookup's
// would.
//
// survey.Service.tx puts an empty holder in the transaction's context
// (WithWebhookTargets); the statements that can fold the lookup in
// (GetSurveyByToken FOR UPDATE, GetIntakeState) fill it when they find one
// there; the outbox reads it with WebhookTargetsFrom and looks up itself
// when nothing filled it.
type WebhookTargets struct {
	TenantID  string
	Loaded    bool
	Endpoints []WebhookEndpoint // ID and EventTypes only
}

type targetsKey struct{}

// WithWebhookTargets returns ctx with an empty holder for the endpoints
// its statements read.
func WithWebhookTargets(ctx context.Context) (context.Context, *WebhookTargets) {
	t := &WebhookTargets{}
	return context.WithValue(ctx, targetsKey{}, t), t
}

// WebhookTargetsFrom returns the endpoints a statement run with ctx read
// for tenantID, or ok=false when none did.
func WebhookTargetsFrom(ctx context.Context, tenantID string) (eps []WebhookEndpoint, ok bool) {
	t, _ := ctx.Value(targetsKey{}).(*WebhookTargets)
	if t == nil || !t.Loaded || t.TenantID != tenantID {
		return nil, false
	}
	return t.Endpoints, true
}

// targetsWanted returns the holder of ctx when it waits for tenantID's
// endpoints.
func targetsWanted(ctx context.Context, tenantID string) *WebhookTargets {
	t, _ := ctx.Value(targetsKey{}).(*WebhookTargets)
	if t == nil || (t.Loaded && t.TenantID == tenantID) {
		return nil
	}
	return t
}

// targetsColumn is the column a statement adds for the endpoints of the
// tenant its tenantCol names: NULL when there are none, so a tenant
// without webhooks costs an index probe and no decoding.
const targetsColumn = `(SELECT json_agg(json_build_object('id', we.id, 'event_types', we.event_types) ORDER BY we.id)
	FROM webhook_endpoints AS we WHERE we.tenant_id = ? AND we.enabled) AS webhook_targets`

// targetsColumnOf is targetsColumn for the tenant of tenantCol, as SQL text.
func targetsColumnOf(tenantCol string) string {
	return strings.Replace(targetsColumn, "?", tenantCol, 1)
}

// targetsRead is a read prepared twice (newKeyPrepared): plain, and with the
// webhook targets of the tenant in tenantCol as a column (withTargets).
type targetsRead struct{ plain, withTargets *preparedQuery }

// newTargetsRead prepares sql(columns) with columns "" and with the targets
// column; the second statement is named name_targets.
func newTargetsRead(name, types, tenantCol string, sql func(columns string) string) targetsRead {
	return targetsRead{
		plain:       newKeyPrepared(name, types, sql("")),
		withTargets: newKeyPrepared(name+"_targets", types, sql(", "+targetsColumnOf(tenantCol))),
	}
}

// scan runs the plain read with args into dest or, when ctx waits for the
// tenant's webhook targets, the read with them, and hands over the targets
// it read into raw (dest's webhook_targets column).
func (r targetsRead) scan(ctx context.Context, idb bun.IDB, tenantID string, dest any, raw *[]byte, args ...any) error {
	targets := targetsWanted(ctx, tenantID)
	read := r.plain
	if targets != nil {
		read = r.withTargets
	}
	if err := read.scan(ctx, idb, dest, args...); err != nil {
		return mapErr(err)
	}
	if targets != nil {
		return targets.fill(tenantID, *raw)
	}
	return nil
}

// fill stores what the column held.
func (t *WebhookTargets) fill(tenantID string, raw []byte) error {
	var eps []struct {
		ID         string   `json:"id"`
		EventTypes []string `json:"event_types"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &eps); err != nil {
			return fmt.Errorf("decode webhook targets: %w", err)
		}
	}
	t.TenantID, t.Loaded, t.Endpoints = tenantID, true, nil
	for _, e := range eps {
		t.Endpoints = append(t.Endpoints, WebhookEndpoint{TenantID: tenantID, ID: e.ID, EventTypes: e.EventTypes, Enabled: true})
	}
	return nil
}
