package survey_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
)

// TestIntakeDecisions: an intake reads the conversation's survey, the
// config and the contact's opt-out in one statement and decides in this
// order: a repeat returns the stored survey (even once disabled or opted
// out), then disabled skips, then an opt-out (any letter case) skips.
func TestIntakeDecisions(t *testing.T) {
	p := newPipeline(t)
	p.clock = time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	tenantID, ctx := p.tenant(t, "Acme")
	_, otherCtx := p.tenant(t, "Other")
	resolved := p.clock.Add(-time.Hour)
	intake := func(ctx context.Context, conv, email string) survey.IntakeResult {
		t.Helper()
		res, err := p.svc.Intake(ctx, survey.IntakeInput{ConversationID: conv, ContactEmail: email, ResolvedAt: &resolved})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := intake(ctx, "c1", "jo@example.com")
	if !first.Created || first.Survey == nil || first.Survey.Status != db.StatusPending ||
		!first.Survey.ScheduledFor.Equal(resolved.Add(2*time.Hour)) {
		t.Fatalf("first intake: %+v %+v", first, first.Survey)
	}
	repeat := intake(ctx, "c1", "someone-else@example.com")
	if repeat.Created || repeat.Survey == nil || repeat.Survey.ID != first.Survey.ID || repeat.Survey.ContactEmail != "jo@example.com" {
		t.Fatalf("repeat intake: %+v", repeat)
	}

	if err := db.InsertUnsubscribe(context.Background(), p.db, &db.Unsubscribe{TenantID: tenantID, Email: "Jo@Example.com"}); err != nil {
		t.Fatal(err)
	}
	if res := intake(ctx, "c2", "JO@example.COM"); res.Skipped != survey.SkipUnsubscribed || res.Survey != nil {
		t.Fatalf("opted-out intake: %+v", res)
	}
	if res := intake(ctx, "c1", "jo@example.com"); res.Survey == nil || res.Survey.ID != first.Survey.ID {
		t.Fatalf("repeat after opt-out: %+v", res)
	}
	if res := intake(otherCtx, "c2", "jo@example.com"); !res.Created {
		t.Fatalf("another tenant's intake for the address: %+v", res)
	}

	if _, err := p.db.NewUpdate().Model((*db.Config)(nil)).Set("enabled = false").Where("tenant_id = ?", tenantID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := intake(ctx, "c3", "new@example.com"); res.Skipped != survey.SkipDisabled || res.Survey != nil {
		t.Fatalf("disabled intake: %+v", res)
	}
	if res := intake(ctx, "c2", "JO@example.COM"); res.Skipped != survey.SkipDisabled {
		t.Fatalf("disabled and opted out: %+v, want disabled first", res)
	}
	if res := intake(ctx, "c1", "jo@example.com"); res.Survey == nil || res.Survey.ID != first.Survey.ID {
		t.Fatalf("repeat while disabled: %+v", res)
	}
	var n int
	if err := p.db.NewRaw("SELECT count(*) FROM surveys WHERE tenant_id = ?", tenantID).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d surveys stored, want 1", n)
	}
}

// TestIntakeConcurrentRepeats: intakes of one conversation arriving
// together store one survey; each of them answers with it, whether it read
// the conversation before or after the winner committed (the insert rides
// with the COMMIT, so a loser learns of the winner there and reads again).
func TestIntakeConcurrentRepeats(t *testing.T) {
	p := newPipeline(t)
	p.clock = time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	tenantID, ctx := p.tenant(t, "Acme")
	resolved := p.clock.Add(-time.Hour)
	const n = 8
	for round := range 5 {
		conv := fmt.Sprintf("race-%d", round)
		results := make([]survey.IntakeResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = p.svc.Intake(ctx, survey.IntakeInput{ConversationID: conv, ContactEmail: "jo@example.com", ResolvedAt: &resolved})
			}()
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("%s: intake %d: %v", conv, i, errs[i])
			}
			if results[i].Created {
				created++
			}
			if results[i].Survey == nil || results[i].Survey.ID != results[0].Survey.ID {
				t.Fatalf("%s: intake %d answered %+v, intake 0 %+v", conv, i, results[i].Survey, results[0].Survey)
			}
		}
		if created != 1 {
			t.Fatalf("%s: %d intakes say they created the survey, want 1", conv, created)
		}
		var stored int
		if err := p.db.NewRaw("SELECT count(*) FROM surveys WHERE tenant_id = ? AND conversation_id = ?", tenantID, conv).Scan(context.Background(), &stored); err != nil {
			t.Fatal(err)
		}
		if stored != 1 {
			t.Fatalf("%s: %d surveys stored, want 1", conv, stored)
		}
	}
}
