package db_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
)

// TestLastClicksStored: a survey's last clicks are stored by the answer's
// locked update and read back by the locked read of its token, to the
// microsecond; a survey never clicked has none (NULL).
func TestLastClicksStored(t *testing.T) {
	f := seedTwoTenants(t) // A's survey was clicked once: rating 5
	now := time.Now().UTC().Truncate(time.Microsecond)
	epoch := time.Unix(0, 0).UTC()
	want := []time.Time{epoch, now.Add(-time.Second), epoch, now, f.SurveyA.LastClicks[4]}
	err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
		sv, err := db.GetSurveyByToken(ctx, tx, f.A, secret.Hash("a"), true)
		if err != nil {
			return err
		}
		if !sameTimes(sv.LastClicks, f.SurveyA.LastClicks) {
			t.Errorf("seeded clicks read back as %v, want %v", sv.LastClicks, f.SurveyA.LastClicks)
		}
		sv.LastClicks = want
		return db.UpdateLockedSurvey(ctx, tx, sv, sv.Status, "last_clicks")
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSurveyByToken(f.ctxA, f.app, f.A, secret.Hash("a"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTimes(got.LastClicks, want) {
		t.Fatalf("last clicks %v, want %v", got.LastClicks, want)
	}

	fresh := f.SurveyB
	fresh.ID, fresh.ConversationID, fresh.TokenHash, fresh.LastClicks = secret.ID("csat_"), "conv-fresh", nil, nil
	if _, err := db.InsertSurvey(f.ctxB, f.app, &fresh); err != nil {
		t.Fatal(err)
	}
	var null bool
	if err := f.admin.NewRaw("SELECT last_clicks IS NULL FROM surveys WHERE id = ?", fresh.ID).Scan(f.unboundCtx, &null); err != nil {
		t.Fatal(err)
	}
	if !null {
		t.Fatal("a survey never clicked stored last clicks")
	}
}

// TestLastClicksMigration: the migration that replaced the click log keeps
// each survey's last click of each rating of the last day, and leaves the
// log (the previous release's processes still use it during a deploy); its
// down migration gives the kept clicks back to the log.
func TestLastClicksMigration(t *testing.T) {
	f := seedTwoTenants(t) // each survey was clicked once: rating 5
	const name = "migrations/20260115000001_last_clicks"
	ctx := f.unboundCtx
	run := func(dir string) {
		t.Helper()
		sql, err := os.ReadFile(name + "." + dir + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.admin.ExecContext(ctx, string(sql)); err != nil {
			t.Fatalf("%s migration: %v", dir, err)
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	epoch := time.Unix(0, 0).UTC()
	t2 := now.Add(-time.Hour)
	if _, err := f.admin.NewRaw("UPDATE surveys SET last_clicks = ? WHERE id = ?",
		pgdialect.Array([]time.Time{epoch, t2, epoch, epoch, now}), f.SurveyA.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	run("down")
	type click struct {
		SurveyID  string    `bun:"survey_id"`
		ClickedAt time.Time `bun:"clicked_at"`
		Rating    int       `bun:"rating"`
	}
	var log []click
	if err := f.admin.NewRaw("SELECT survey_id, clicked_at, rating FROM survey_clicks WHERE tenant_id = ? ORDER BY rating", f.A).Scan(ctx, &log); err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Rating != 2 || !log[0].ClickedAt.Equal(t2) || log[1].Rating != 5 || !log[1].ClickedAt.Equal(now) {
		t.Fatalf("down migration's log of A: %+v, want rating 2 at %s and 5 at %s", log, t2, now)
	}
	// Older clicks, and a later one, of ratings A has; B's first of rating 1.
	for _, c := range []struct {
		tenant, survey string
		at             time.Time
		rating         int
	}{
		{f.A, f.SurveyA.ID, t2.Add(-time.Minute), 2},
		{f.A, f.SurveyA.ID, t2.Add(time.Second), 2},
		{f.A, f.SurveyA.ID, now.Add(-time.Minute), 1},
		{f.B, f.SurveyB.ID, now, 1},
	} {
		if _, err := f.admin.NewRaw("INSERT INTO survey_clicks VALUES (?, ?, ?, ?)", c.tenant, c.survey, c.at, c.rating).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}

	run("up")
	for _, c := range []struct {
		id   string
		want []time.Time
	}{
		{f.SurveyA.ID, []time.Time{now.Add(-time.Minute), t2.Add(time.Second), epoch, epoch, now}},
		{f.SurveyB.ID, []time.Time{now, epoch, epoch, epoch, f.SurveyB.LastClicks[4]}},
	} {
		var got []time.Time
		if err := f.admin.NewRaw("SELECT last_clicks FROM surveys WHERE id = ?", c.id).Scan(ctx, pgdialect.Array(&got)); err != nil {
			t.Fatal(err)
		}
		if !sameTimes(got, c.want) {
			t.Errorf("survey %s: last clicks %v, want %v", c.id, got, c.want)
		}
	}
	if n := count(t, ctx, f.admin, "survey_clicks"); n != 3+4 { // the down migration's (A's two, B's one) and the four added
		t.Errorf("the log holds %d clicks after the migration, want them all kept", n)
	}
}

func sameTimes(a, b []time.Time) bool {
	return slices.EqualFunc(a, b, func(x, y time.Time) bool { return x.Equal(y) })
}
