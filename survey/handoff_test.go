package survey

import (
	"context"
	"testing"

	"github.com/csat/csat/db"
)

// TestHandoffCommitIsAsyncUnlessDurable: SEND_DURABLE_HANDOFF decides
// whether the handoff transaction's statements carry WithAsyncCommit (whose
// effect on Postgres db's TestAsyncCommitLastsOneTransaction checks).
func TestHandoffCommitIsAsyncUnlessDurable(t *testing.T) {
	bound := db.WithTenant(context.Background(), "ten_x")
	for _, c := range []struct {
		durable, async bool
	}{{false, true}, {true, false}} {
		s := &Service{DurableHandoff: c.durable}
		ctx := s.handoffContext(bound)
		if got := db.AsyncCommit(ctx); got != c.async {
			t.Errorf("DurableHandoff=%v: async commit %v, want %v", c.durable, got, c.async)
		}
		if id, _ := db.BoundTenant(ctx); id != "ten_x" {
			t.Errorf("DurableHandoff=%v: the handoff lost its tenant binding (%q)", c.durable, id)
		}
	}
}
