package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/live"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

// TestPublishKeepsOrderAndCloseFlushes: updates queued behind the
// requests reach subscribers in commit order, without token hashes, and
// Close sends what is still queued before it returns.
func TestPublishKeepsOrderAndCloseFlushes(t *testing.T) {
	_, rdb := testenv.RedisNoFlush(t, 11) // pub/sub ignores the database number
	ctx := context.Background()
	tenantID := secret.ID("ten_")
	sub := rdb.Subscribe(ctx, live.Channel(tenantID))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := sub.Channel()

	hub := &live.Hub{Redis: rdb}
	const n = 500
	for i := range n {
		r := i%5 + 1
		hub.AfterCommit(ctx, survey.Event{Type: survey.EventCompleted, TenantID: tenantID, At: time.Now(),
			Survey: &db.Survey{TenantID: tenantID, ID: fmt.Sprintf("csat_%04d", i), Rating: &r, TokenHash: []byte("secret")}})
	}
	hub.Close()
	// After Close nothing more is sent, and nothing panics.
	hub.AfterCommit(ctx, survey.Event{Type: survey.EventCompleted, TenantID: tenantID, Survey: &db.Survey{TenantID: tenantID, ID: "csat_late"}})

	for i := range n {
		select {
		case m := <-msgs:
			var got struct {
				Type   string          `json:"type"`
				Survey json.RawMessage `json:"survey"`
			}
			var sv db.Survey
			if err := json.Unmarshal([]byte(m.Payload), &got); err != nil || json.Unmarshal(got.Survey, &sv) != nil {
				t.Fatalf("message %d: %q: %v", i, m.Payload, err)
			}
			if want := fmt.Sprintf("csat_%04d", i); sv.ID != want || got.Type != survey.EventCompleted {
				t.Fatalf("message %d is %s %s, want %s", i, got.Type, sv.ID, want)
			}
			if sv.TokenHash != nil {
				t.Fatalf("message %d carries the token hash", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d updates", i, n)
		}
	}
	// The next message is a marker sent after Close, not the late update.
	if err := rdb.Publish(ctx, live.Channel(tenantID), "marker").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.Payload != "marker" {
			t.Fatalf("an update after Close was sent: %s", m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("marker not received")
	}
}
