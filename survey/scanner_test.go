package survey_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/db"
)

// TestScannerRuleConcurrentClicks: five different one-click ratings of a
// survey arriving together (a link scanner opening every link) queue on
// the survey's lock, and each counts the clicks committed before it: the
// third and later clear the rating, so the survey ends flagged and
// unrated, whatever order they ran in. Clicks read from a row older than
// the lock would let a late click store its rating, and lose the others'
// clicks.
func TestScannerRuleConcurrentClicks(t *testing.T) {
	p := newPipeline(t)
	p.clock = time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	tenantID, ctx := p.tenant(t, "Acme")
	for round := range 6 {
		id, token := p.send(t, ctx, fmt.Sprintf("scan-%d", round), "", "", "")
		var wg sync.WaitGroup
		errs := make([]error, 5)
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = p.svc.Rate(ctx, token, i+1)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: click %d: %v", round, i+1, err)
			}
		}
		sv, err := db.GetSurvey(ctx, p.db, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		if sv.Rating != nil || !sv.Flagged || sv.Status != db.StatusSent || sv.RespondedAt != nil {
			t.Fatalf("round %d: after five different clicks: status %s rating %v flagged %v", round, sv.Status, sv.Rating, sv.Flagged)
		}
		// Every click is kept, none overwritten by a concurrent one.
		for r, at := range sv.LastClicks {
			if !at.Equal(p.clock) {
				t.Fatalf("round %d: rating %d last clicked %s, want %s", round, r+1, at, p.clock)
			}
		}
		if len(sv.LastClicks) != 5 {
			t.Fatalf("round %d: %d ratings' clicks kept, want 5", round, len(sv.LastClicks))
		}
	}
}
