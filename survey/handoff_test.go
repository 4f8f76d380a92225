package survey

import (
	"context"
	"testing"

	"github.com/csat/csat/db"
)

// TestHandoffCommitIsDurableUnlessAsync: SEND_ASYNC_HANDOFF decides whether
// the handoff transaction's statements carry WithAsyncCommit (whose effect
// on Postgres db's TestAsyncCommitLastsOneTransaction checks); a Service
// left at its zero value commits durably.
func TestHandoffCommitIsDurableUnlessAsync(t *testing.T) {
	bound := db.WithTenant(context.Background(), "ten_x")
	for _, async := range []bool{false, true} {
		s := &Service{AsyncHandoff: async}
		ctx := s.handoffContext(bound)
		if got := db.AsyncCommit(ctx); got != async {
			t.Errorf("AsyncHandoff=%v: async commit %v", async, got)
		}
		if id, _ := db.BoundTenant(ctx); id != "ten_x" {
			t.Errorf("AsyncHandoff=%v: the handoff lost its tenant binding (%q)", async, id)
		}
	}
}
