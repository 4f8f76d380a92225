package survey_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
)

// TestSurveyCountsMatchRecount drives random surveys through intake, send,
// ratings, link-scanner clears, single and swept expiries and deletes,
// then checks the per-status counters with the changes not folded into
// them yet (what a list's total reads: the sweep folded some, the deletes
// came after) against a recount, and List's totals against the rows.
func TestSurveyCountsMatchRecount(t *testing.T) {
	p := newPipeline(t)
	rng := rand.New(rand.NewPCG(3, 5))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var ctxs []context.Context
	for ti := range 2 {
		tenantID, ctx := p.tenant(t, fmt.Sprintf("T%d", ti))
		ctxs = append(ctxs, ctx)
		for i := range 60 {
			p.clock = base.Add(time.Duration(i) * time.Minute)
			if rng.IntN(5) == 0 { // stays pending
				resolved := p.clock
				if _, err := p.svc.Intake(ctx, survey.IntakeInput{ConversationID: fmt.Sprintf("p%d", i), ContactEmail: "p@example.com", ResolvedAt: &resolved}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			id, tok := p.send(t, ctx, fmt.Sprintf("c%d-%d", ti, i), "ann", "red", "email")
			p.clock = p.clock.Add(time.Hour)
			switch rng.IntN(5) {
			case 0: // unanswered, swept later
			case 1:
				if _, err := p.svc.Rate(ctx, tok, 1+rng.IntN(5)); err != nil {
					t.Fatal(err)
				}
			case 2: // scanner: completed, then cleared back to sent
				for r := 1; r <= 3; r++ {
					if _, err := p.svc.Rate(ctx, tok, r); err != nil {
						t.Fatal(err)
					}
				}
			case 3:
				if _, err := p.svc.Submit(ctx, tok, 5, nil); err != nil {
					t.Fatal(err)
				}
			case 4:
				p.clock = p.clock.Add(8 * 24 * time.Hour)
				if _, err := p.svc.Expire(ctx, tenantID, id); err != nil {
					t.Fatal(err)
				}
				p.clock = base.Add(time.Duration(i) * time.Minute)
			}
		}
	}
	p.clock = base.Add(7*24*time.Hour + 30*time.Minute) // expires the unanswered sent in the first half hour
	if _, err := p.svc.Sweep(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := p.db.ExecContext(context.Background(), "DELETE FROM surveys WHERE id IN (SELECT id FROM surveys WHERE status = 'completed' LIMIT 7)"); err != nil {
		t.Fatal(err)
	}

	var diff []string
	err := p.db.NewRaw(`
		WITH kept AS (SELECT tenant_id, status, sum(n) AS n FROM (
				SELECT tenant_id, status, n FROM survey_counts
				UNION ALL SELECT x.tenant_id, x.status, x.sign FROM survey_stat_deltas x WHERE `+unfolded+`) k
			GROUP BY 1, 2),
		     recount AS (SELECT tenant_id, status, count(*) AS n FROM surveys GROUP BY 1, 2)
		SELECT format('%s %s: counters %s, recount %s', tenant_id, status, coalesce(k.n, 0), coalesce(r.n, 0))
		FROM kept k FULL JOIN recount r USING (tenant_id, status)
		WHERE coalesce(k.n, 0) <> coalesce(r.n, 0)`).Scan(context.Background(), &diff)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diff {
		t.Error(d)
	}
	var statuses []string
	if err := p.db.NewRaw("SELECT DISTINCT status FROM surveys ORDER BY 1").Scan(context.Background(), &statuses); err != nil {
		t.Fatal(err)
	}
	if len(statuses) < 4 {
		t.Fatalf("the random walk reached only %v; want every status", statuses)
	}
	// List's total, unfiltered, by status and with a filter the counters
	// cannot answer, equals the rows.
	for _, ctx := range ctxs {
		for _, f := range []db.SurveyFilter{{}, {Statuses: []string{db.StatusSent, db.StatusExpired}}, {Channel: "email"}} {
			page, err := p.svc.List(ctx, f, survey.MaxLimit, 0)
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != len(page.Surveys) || page.Total == 0 { // fewer than MaxLimit rows: one page holds all
				t.Errorf("filter %+v: total %d, rows %d", f, page.Total, len(page.Surveys))
			}
			// A page inside the list and one past its end keep the total.
			mid, err := p.svc.List(ctx, f, 2, 1)
			if err != nil {
				t.Fatal(err)
			}
			if mid.Total != page.Total || len(mid.Surveys) != min(2, max(0, page.Total-1)) ||
				(len(mid.Surveys) > 0 && mid.Surveys[0].ID != page.Surveys[1].ID) {
				t.Errorf("filter %+v, limit 2 offset 1: total %d, %d rows", f, mid.Total, len(mid.Surveys))
			}
			past, err := p.svc.List(ctx, f, 10, page.Total+5)
			if err != nil {
				t.Fatal(err)
			}
			if past.Total != page.Total || len(past.Surveys) != 0 {
				t.Errorf("filter %+v, offset past the end: total %d, %d rows", f, past.Total, len(past.Surveys))
			}
		}
	}
}

// assertDailyMatchesHourly checks the daily rollup against the hourly one
// summed per UTC day (the hourly one is checked against a recount).
func assertDailyMatchesHourly(t *testing.T, bdb *bun.DB) {
	t.Helper()
	var diff []string
	err := bdb.NewRaw(`
		WITH hourly AS (
			SELECT tenant_id, dim, dim_key, date_trunc('day', hour, 'UTC') AS day,
			       sum(sent) AS sent, sum(r1) AS r1, sum(r2) AS r2, sum(r3) AS r3, sum(r4) AS r4, sum(r5) AS r5
			FROM survey_stats_hourly GROUP BY 1, 2, 3, 4
			HAVING (sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)) <> (0, 0, 0, 0, 0, 0)),
		daily AS (
			SELECT tenant_id, dim, dim_key, day, sent, r1, r2, r3, r4, r5 FROM survey_stats_daily
			WHERE (sent, r1, r2, r3, r4, r5) <> (0, 0, 0, 0, 0, 0))
		SELECT format('%s %s=%s %s: daily [%s], hourly [%s]', tenant_id, dim, dim_key, day,
		              concat_ws(' ', d.sent, d.r1, d.r2, d.r3, d.r4, d.r5), concat_ws(' ', h.sent, h.r1, h.r2, h.r3, h.r4, h.r5))
		FROM daily d FULL JOIN hourly h USING (tenant_id, dim, dim_key, day)
		WHERE (d.sent, d.r1, d.r2, d.r3, d.r4, d.r5) IS DISTINCT FROM (h.sent, h.r1, h.r2, h.r3, h.r4, h.r5)`).Scan(context.Background(), &diff)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diff {
		t.Error(d)
	}
	var n int
	_ = bdb.NewRaw("SELECT count(*) FROM survey_stats_daily").Scan(context.Background(), &n)
	if n == 0 {
		t.Fatal("daily rollup is empty")
	}
}
