package db_test

import (
	"testing"
	"time"

	"github.com/csat/csat/db"
)

// TestRecordClickCounts: the click is stored and counted in the same
// statement: distinct ratings inside the window, this one included, a
// repeat of a stored click counted once.
func TestRecordClickCounts(t *testing.T) {
	f := seedTwoTenants(t) // A's survey holds one click: rating 5 at about now
	now := time.Now().UTC()
	win := now.Add(-time.Minute)
	sec := func(n int) time.Time { return now.Add(time.Duration(n) * time.Second) }
	for _, c := range []struct {
		rating int
		at     time.Time
		since  time.Time
		want   int
	}{
		{4, sec(1), win, 2},
		{4, sec(2), win, 2},    // a re-click with the same rating
		{3, sec(3), win, 3},    // a third rating
		{3, sec(3), win, 3},    // the very same click again (ON CONFLICT)
		{1, sec(4), sec(3), 2}, // only clicks since 3 s: the 3 and this 1
	} {
		n, err := db.RecordClick(f.ctxA, f.app, f.A, f.SurveyA.ID, c.rating, c.at, c.since)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Fatalf("rating %d at +%s since %s: %d distinct, want %d", c.rating, c.at.Sub(now), c.since.Sub(now), n, c.want)
		}
	}
	if n := count(t, f.ctxA, f.app, "survey_clicks"); n != 5 {
		t.Fatalf("A has %d clicks stored, want 5", n)
	}
}
