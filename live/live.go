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
	"sync"
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

	// Publishing runs behind the request: one goroutine takes the updates
	// in commit order and sends what queued up meanwhile in one pipeline,
	// so a change does not wait for a Redis round trip of its own.
	start  sync.Once
	mu     sync.RWMutex // AfterCommit (read) against Close (write)
	closed bool
	out    chan update
	done   chan struct{}
}

// update is one message for one channel.
type update struct {
	channel string
	body    []byte
}

// queued bounds the updates waiting for Redis; past it AfterCommit waits,
// as it did for its own publish.
const queued = 1024

// publishBatch caps one pipeline.
const publishBatch = 128

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

// AfterCommit queues a survey change for publishing. Live updates are best
// effort: a Redis failure is logged and never fails the change itself.
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
	h.start.Do(h.run)
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return
	}
	h.out <- update{channel: Channel(ev.TenantID), body: b}
}

// linger is how long the publisher waits, after a batch's first update,
// for more to share its pipeline. Without it the publisher woke for every
// change and sent it alone: at a few thousand ratings a second that round
// trip and its two system calls were about a tenth of the process's CPU
// (one-click, 100,000 surveys). A dashboard sees a change at most this much
// later.
const linger = 2 * time.Millisecond

// run starts the publisher.
func (h *Hub) run() {
	h.out, h.done = make(chan update, queued), make(chan struct{})
	go func() {
		defer close(h.done)
		batch := make([]update, 0, publishBatch)
		wait := time.NewTimer(linger)
		defer wait.Stop()
		for u := range h.out {
			batch = append(batch[:0], u)
			wait.Reset(linger)
		more:
			for len(batch) < publishBatch {
				select {
				case u, ok := <-h.out:
					if !ok {
						break more
					}
					batch = append(batch, u)
				case <-wait.C:
					break more
				}
			}
			h.publish(batch)
		}
	}()
}

// publish sends a batch in one pipeline.
func (h *Hub) publish(batch []update) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := h.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range batch {
			p.Publish(ctx, u.channel, u.body)
		}
		return nil
	})
	if err != nil {
		h.log().Warn("publish live updates", "updates", len(batch), "err", err)
	}
}

// Close publishes the updates still queued and stops the publisher; later
// updates are dropped. Call it before closing Redis.
func (h *Hub) Close() {
	h.start.Do(h.run)
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.out)
	}
	h.mu.Unlock()
	<-h.done
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
