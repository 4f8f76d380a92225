package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/secret"
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

// TestLockSurveyForClick: one round trip locks the survey behind a token,
// stores the click and counts the distinct ratings in the window, this one
// included, as RecordClick does; another tenant's token, or an unknown one,
// is not found and stores nothing.
func TestLockSurveyForClick(t *testing.T) {
	f := seedTwoTenants(t) // A's survey holds one click: rating 5 at about now
	now := time.Now().UTC()
	win := now.Add(-time.Minute)
	sec := func(n int) time.Time { return now.Add(time.Duration(n) * time.Second) }
	for _, c := range []struct {
		name    string
		hash    []byte
		rating  int
		at      time.Time
		since   time.Time
		want    int
		wantErr error
	}{
		{"second-rating", secret.Hash("a"), 4, sec(1), win, 2, nil},
		{"same-rating-again", secret.Hash("a"), 4, sec(2), win, 2, nil},
		{"third-rating", secret.Hash("a"), 3, sec(3), win, 3, nil},
		{"same-click-again", secret.Hash("a"), 3, sec(3), win, 3, nil}, // ON CONFLICT
		{"window", secret.Hash("a"), 1, sec(4), sec(3), 2, nil},        // only the 3 and this 1
		{"other-tenants-token", secret.Hash("b"), 2, sec(5), win, 0, errs.ErrNotFound},
		{"unknown-token", secret.Hash("nope"), 2, sec(6), win, 0, errs.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				sv, n, err := db.LockSurveyForClick(ctx, tx, f.A, c.hash, c.rating, c.at, c.since)
				if err != nil {
					return err
				}
				if sv.ID != f.SurveyA.ID || n != c.want {
					t.Errorf("survey %s, %d distinct; want %s, %d", sv.ID, n, f.SurveyA.ID, c.want)
				}
				return nil
			})
			if !errors.Is(err, c.wantErr) || (err != nil) != (c.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
		})
	}
	if n := count(t, f.unboundCtx, f.admin, "survey_clicks"); n != 2+4 { // the seeded two, four new (one repeated)
		t.Fatalf("%d clicks stored, want 6", n)
	}
}
