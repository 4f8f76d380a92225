// Package live carries survey changes to dashboards: a survey.EventSink
// publishes each committed change on its tenant's Redis pub/sub channel,
// and every API process subscribes its websocket clients there, so a
// rating recorded by any process reaches subscribers on all of them.
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
)

// Hub publishes and subscribes survey updates through Redis.
type Hub struct {
	Redis redis.UniversalClient
	Log   *slog.Logger
}

var _ survey.EventSink = (*Hub)(nil)

// Channel is the Redis channel of a tenant's survey updates.
func Channel(tenantID string) string { return "csat:live:surveys:" + tenantID }

// message is what travels on a channel: the survey as committed, without
// its token hashes.
type message struct {
	Type   string     `json:"type"`
	Survey *db.Survey `json:"survey"`
}

// InTx does nothing: live updates are sent only once the change committed.
func (h *Hub) InTx(context.Context, bun.IDB, survey.Event) error { return nil }

// AfterCommit publishes a survey change. Live updates are best effort: a
// Redis failure is logged and never fails the change itself.
func (h *Hub) AfterCommit(ctx context.Context, ev survey.Event) {
	if ev.Survey == nil || ev.TenantID == "" {
		return
	}
	sv := *ev.Survey
	sv.TokenHash, sv.UnsubHash = nil, nil
	b, err := json.Marshal(message{Type: ev.Type, Survey: &sv})
	if err != nil {
		h.log().Warn("encode live update", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := h.Redis.Publish(ctx, Channel(ev.TenantID), b).Err(); err != nil {
		h.log().Warn("publish live update", "tenant_id", ev.TenantID, "survey_id", sv.ID, "err", err)
	}
}

func (h *Hub) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// Subscribe streams the context tenant's survey updates (scope csat:read)
// until ctx ends, then closes the channel. It returns once Redis confirmed
// the subscription, so no update committed afterwards is missed. Each
// subscriber holds its own Redis connection.
func (h *Hub) Subscribe(ctx context.Context) (<-chan *db.Survey, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return nil, err
	}
	ps := h.Redis.Subscribe(ctx, Channel(tenantID))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe to live updates: %w", err)
	}
	out := make(chan *db.Survey, 16)
	go func() {
		defer close(out)
		defer ps.Close()
		in := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				var msg message
				if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil || msg.Survey == nil || msg.Survey.TenantID != tenantID {
					continue // never another tenant's, never garbage
				}
				select {
				case out <- msg.Survey:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
