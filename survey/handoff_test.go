package survey

import (
	"context"
	"errors"
	"testing"
	"time"

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

// TestHandoffGroupSize: SEND_HANDOFF_GROUP, its default, and the cap on
// emails in flight, which a group never exceeds.
func TestHandoffGroupSize(t *testing.T) {
	for _, c := range []struct{ group, inFlight, want int }{
		{0, 0, DefaultHandoffGroup},
		{1, 20, 1},
		{16, 0, 16},
		{16, 20, 16},
		{16, 4, 4},
	} {
		s := &Service{HandoffGroup: c.group, MaxInFlight: c.inFlight}
		if got := s.groupSize(); got != c.want {
			t.Errorf("group %d, in flight %d: %d, want %d", c.group, c.inFlight, got, c.want)
		}
	}
}

// TestTakeSlotsCapsEmailsInFlight: a group waits until its emails fit
// under MaxInFlight, and gets them once another group gives its back.
func TestTakeSlotsCapsEmailsInFlight(t *testing.T) {
	s := &Service{MaxInFlight: 3}
	giveBack, err := s.takeSlots(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.takeSlots(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("4 emails in flight under a cap of 3: %v", err)
	}
	giveBack()
	if _, err := s.takeSlots(context.Background(), 3); err != nil {
		t.Fatalf("after the first group ended: %v", err)
	}
	if _, err := (&Service{}).takeSlots(ctx, 1000); err != nil {
		t.Fatalf("no cap: %v", err)
	}
}
