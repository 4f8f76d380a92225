package survey_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// noJobs drops scheduling: the tests call Send and Expire themselves.
type noJobs struct{}

func (noJobs) ScheduleSend(context.Context, string, string, time.Time) error   { return nil }
func (noJobs) ScheduleExpire(context.Context, string, string, time.Time) error { return nil }

// inbox keeps the survey emails so the tests can follow their links.
type inbox struct {
	mu   sync.Mutex
	last map[string]string // recipient -> token of the newest email
}

var tokenRE = regexp.MustCompile(`token=([^&\s]+)`)

func (b *inbox) Send(_ context.Context, m mail.Message, h *mail.Handoff) error {
	if h != nil {
		if err := h.Hold(); err != nil {
			return err
		}
		if err := h.Commit(); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		b.last = map[string]string{}
	}
	if t := tokenRE.FindStringSubmatch(m.Text); t != nil {
		b.last[m.To] = t[1]
	}
	return nil
}

func (b *inbox) token(to string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last[to]
}

// pipeline is a survey service on a fresh database with a movable clock.
type pipeline struct {
	svc   *survey.Service
	db    *bun.DB // superuser, for fixtures and checks across tenants; svc runs as csat_app
	mail  *inbox
	clock time.Time
}

func newPipeline(t *testing.T) *pipeline {
	dsn, bdb := testenv.DB(t)
	p := &pipeline{db: testenv.Admin(t, dsn), mail: &inbox{}}
	p.svc = &survey.Service{DB: bdb, Jobs: noJobs{}, Mailer: p.mail, BaseURL: "http://csat.test", Now: func() time.Time { return p.clock }}
	return p
}

func (p *pipeline) tenant(t *testing.T, name string) (string, context.Context) {
	t.Helper()
	ten, err := (&tenants.Store{DB: p.db}).CreateTenant(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := tenants.NewContext(context.Background(), tenants.Principal{TenantID: ten.ID, Scopes: []string{tenants.ScopeRead, tenants.ScopeWrite}})
	return ten.ID, ctx
}

// send takes a conversation through intake and send at the clock's time
// and returns the survey id and its link token.
func (p *pipeline) send(t *testing.T, ctx context.Context, conv, agent, team, channel string) (string, string) {
	t.Helper()
	resolved := p.clock.Add(-2 * time.Hour)
	email := conv + "@example.com"
	res, err := p.svc.Intake(ctx, survey.IntakeInput{ConversationID: conv, ContactEmail: email, ResolvedAt: &resolved,
		AgentID: agent, TeamID: team, Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := tenants.FromContext(ctx)
	out, err := p.svc.Send(ctx, p2.TenantID, res.Survey.ID)
	if err != nil || out != survey.OutcomeSent {
		t.Fatalf("send %s: %v %v", conv, out, err)
	}
	return res.Survey.ID, p.mail.token(email)
}

// TestRollupMatchesRecount drives random surveys through intake, send,
// one-click ratings (with re-ratings and link-scanner clears), full
// submissions and expiry, then checks the hourly rollup the trigger kept
// against a full recount of the surveys, row for row.
func TestRollupMatchesRecount(t *testing.T) {
	p := newPipeline(t)
	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	for ti := range 2 {
		tenantID, ctx := p.tenant(t, fmt.Sprintf("T%d", ti))
		type sent struct{ id, token string }
		var all []sent
		for i := range 120 {
			p.clock = base.Add(time.Duration(rng.IntN(72*60)) * time.Minute)
			if rng.IntN(10) == 0 { // never sent
				resolved := p.clock
				if _, err := p.svc.Intake(ctx, survey.IntakeInput{ConversationID: fmt.Sprintf("p%d", i), ContactEmail: "p@example.com", ResolvedAt: &resolved}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			id, tok := p.send(t, ctx, fmt.Sprintf("c%d-%d", ti, i), pick("", "ann", "bob", "cyd"), pick("", "red", "blue"), pick("", "email", "chat"))
			all = append(all, sent{id, tok})
		}
		for _, s := range all {
			p.clock = base.Add(80*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			switch rng.IntN(6) {
			case 0: // unanswered
			case 1, 2:
				if _, err := p.svc.Rate(ctx, s.token, 1+rng.IntN(5)); err != nil {
					t.Fatal(err)
				}
			case 3: // re-rating through the full survey
				_, _ = p.svc.Rate(ctx, s.token, 1+rng.IntN(5))
				p.clock = p.clock.Add(time.Minute)
				if _, err := p.svc.Submit(ctx, s.token, 1+rng.IntN(5), nil); err != nil {
					t.Fatal(err)
				}
			case 4: // a link scanner clicks every rating: cleared
				for r := 1; r <= 5; r++ {
					if _, err := p.svc.Rate(ctx, s.token, r); err != nil {
						t.Fatal(err)
					}
				}
			case 5: // expires unanswered
				p.clock = base.Add(30 * 24 * time.Hour)
				if _, err := p.svc.Expire(ctx, tenantID, s.id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// A deleted survey leaves the rollup too.
	if _, err := p.db.ExecContext(context.Background(), "DELETE FROM surveys WHERE id IN (SELECT id FROM surveys WHERE rating IS NOT NULL LIMIT 5)"); err != nil {
		t.Fatal(err)
	}
	// Nothing folded yet (no folder runs here): the deltas carry it all.
	var pending int
	if err := p.db.NewRaw("SELECT count(*) FROM survey_stat_deltas x WHERE "+unfolded).Scan(context.Background(), &pending); err != nil || pending == 0 {
		t.Fatalf("want unfolded deltas before folding: %d, %v", pending, err)
	}
	assertRollupMatches(t, p.db)
	// Folded, the rollups alone hold the same.
	ids, err := db.ListTenantIDs(context.Background(), p.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := p.svc.FoldStats(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.db.NewRaw("SELECT count(*) FROM survey_stat_deltas x WHERE "+unfolded).Scan(context.Background(), &pending); err != nil || pending != 0 {
		t.Fatalf("%d deltas unfolded after folding every tenant (%v)", pending, err)
	}
	assertRollupMatches(t, p.db)
	assertDailyMatchesHourly(t, p.db)
}

// unfolded is true for a delta x its tenant's last fold did not see.
const unfolded = "NOT coalesce(pg_visible_in_snapshot(x.xid, (SELECT f.snap FROM survey_stat_folds f WHERE f.tenant_id = x.tenant_id)), false)"

// assertRollupMatches compares every non-zero hourly rollup row, with the
// deltas not folded yet added, with a recount.
func assertRollupMatches(t *testing.T, bdb *bun.DB) {
	t.Helper()
	var diff []struct {
		Tenant string `bun:"tenant_id"`
		Dim    string `bun:"dim"`
		Key    string `bun:"dim_key"`
		Hour   time.Time
		Rollup string `bun:"rollup"`
		Count  string `bun:"recount"`
	}
	err := bdb.NewRaw(`
		WITH recount AS (
			SELECT s.tenant_id, d.dim, d.dim_key, date_trunc('hour', s.sent_at, 'UTC') AS hour,
			       count(*)::int AS sent,
			       count(*) FILTER (WHERE rating = 1)::int AS r1, count(*) FILTER (WHERE rating = 2)::int AS r2,
			       count(*) FILTER (WHERE rating = 3)::int AS r3, count(*) FILTER (WHERE rating = 4)::int AS r4,
			       count(*) FILTER (WHERE rating = 5)::int AS r5
			FROM surveys s CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', coalesce(s.agent_id, '')),
				('team', coalesce(s.team_id, '')), ('channel', coalesce(s.channel, ''))) AS d (dim, dim_key)
			WHERE s.sent_at IS NOT NULL GROUP BY 1, 2, 3, 4),
		deltas AS (
			SELECT x.tenant_id, k.dim, k.dim_key, date_trunc('hour', x.sent_at, 'UTC') AS hour, x.sign::int AS sent,
			       CASE WHEN x.rating = 1 THEN x.sign ELSE 0 END AS r1, CASE WHEN x.rating = 2 THEN x.sign ELSE 0 END AS r2,
			       CASE WHEN x.rating = 3 THEN x.sign ELSE 0 END AS r3, CASE WHEN x.rating = 4 THEN x.sign ELSE 0 END AS r4,
			       CASE WHEN x.rating = 5 THEN x.sign ELSE 0 END AS r5
			FROM survey_stat_deltas x CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', x.agent_id),
				('team', x.team_id), ('channel', x.channel)) AS k (dim, dim_key)
			WHERE x.sent_at IS NOT NULL AND `+unfolded+`),
		rollup AS (
			SELECT tenant_id, dim, dim_key, hour, sum(sent)::int AS sent, sum(r1)::int AS r1, sum(r2)::int AS r2,
			       sum(r3)::int AS r3, sum(r4)::int AS r4, sum(r5)::int AS r5
			FROM (SELECT tenant_id, dim, dim_key, hour, sent, r1, r2, r3, r4, r5 FROM survey_stats_hourly
			      UNION ALL SELECT * FROM deltas) u
			GROUP BY 1, 2, 3, 4
			HAVING (sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)) <> (0, 0, 0, 0, 0, 0))
		SELECT coalesce(r.tenant_id, c.tenant_id) AS tenant_id, coalesce(r.dim, c.dim) AS dim,
		       coalesce(r.dim_key, c.dim_key) AS dim_key, coalesce(r.hour, c.hour) AS hour,
		       coalesce(format('%s %s %s %s %s %s', r.sent, r.r1, r.r2, r.r3, r.r4, r.r5), '') AS rollup,
		       coalesce(format('%s %s %s %s %s %s', c.sent, c.r1, c.r2, c.r3, c.r4, c.r5), '') AS recount
		FROM rollup r FULL JOIN recount c USING (tenant_id, dim, dim_key, hour)
		WHERE (r.sent, r.r1, r.r2, r.r3, r.r4, r.r5) IS DISTINCT FROM (c.sent, c.r1, c.r2, c.r3, c.r4, c.r5)`).Scan(context.Background(), &diff)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diff {
		t.Errorf("%s %s=%q %s: rollup [%s], recount [%s]", d.Tenant, d.Dim, d.Key, d.Hour.UTC().Format(time.RFC3339), d.Rollup, d.Count)
	}
	// The daily rollup adds up the hourly one, the monthly the daily.
	for _, c := range []struct{ coarse, at, fine, unit string }{
		{"survey_stats_daily", "day", "survey_stats_hourly", "day"},
		{"survey_stats_monthly", "month", "survey_stats_daily", "month"},
	} {
		var n int
		err := bdb.NewRaw(`SELECT count(*) FROM (
				SELECT tenant_id, dim, dim_key, ? AS at, sent, r1, r2, r3, r4, r5 FROM ?
				WHERE (sent, r1, r2, r3, r4, r5) <> (0, 0, 0, 0, 0, 0)) c
			FULL JOIN (
				SELECT tenant_id, dim, dim_key, date_trunc(?, ?, 'UTC') AS at,
				       sum(sent) AS sent, sum(r1) AS r1, sum(r2) AS r2, sum(r3) AS r3, sum(r4) AS r4, sum(r5) AS r5
				FROM ? GROUP BY 1, 2, 3, 4
				HAVING (sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)) <> (0, 0, 0, 0, 0, 0)) f
			USING (tenant_id, dim, dim_key, at)
			WHERE (c.sent, c.r1, c.r2, c.r3, c.r4, c.r5) IS DISTINCT FROM (f.sent, f.r1, f.r2, f.r3, f.r4, f.r5)`,
			bun.Ident(c.at), bun.Ident(c.coarse), c.unit, bun.Ident(map[string]string{"survey_stats_hourly": "hour", "survey_stats_daily": "day"}[c.fine]), bun.Ident(c.fine)).
			Scan(context.Background(), &n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows differ from %s added up", c.coarse, n, c.fine)
		}
	}
	var rows, surveys int
	_ = bdb.NewRaw("SELECT (SELECT count(*) FROM survey_stats_hourly) + (SELECT count(*) FROM survey_stat_deltas)").Scan(context.Background(), &rows)
	_ = bdb.NewRaw("SELECT count(*) FROM surveys WHERE sent_at IS NOT NULL").Scan(context.Background(), &surveys)
	if rows == 0 || surveys == 0 {
		t.Fatalf("nothing to compare: %d rollup rows and deltas, %d sent surveys", rows, surveys)
	}
}

// expect computes analytics the slow way, from every survey row.
type expect struct {
	rows []db.Survey
}

func (e expect) counts(q survey.AnalyticsQuery, keep func(local time.Time, s db.Survey) bool) survey.Counts {
	loc, _ := time.LoadLocation(q.Timezone)
	start, _ := time.ParseInLocation(survey.DateLayout, q.StartDate, loc)
	end, _ := time.ParseInLocation(survey.DateLayout, q.EndDate, loc)
	var c survey.Counts
	for _, s := range e.rows {
		if s.SentAt == nil || s.SentAt.Before(start) || !s.SentAt.Before(end.AddDate(0, 0, 1)) {
			continue
		}
		f := q.Filter
		if (f.AgentID != "" && s.AgentID != f.AgentID) || (f.TeamID != "" && s.TeamID != f.TeamID) || (f.Channel != "" && s.Channel != f.Channel) {
			continue
		}
		if !keep(s.SentAt.In(loc), s) {
			continue
		}
		c.Sent++
		if s.Rating != nil {
			c.Distribution[*s.Rating-1]++
		}
	}
	return c
}

// TestAnalyticsMatchesRows checks totals, trends and breakdowns in several
// timezones (whole-hour ones answered from the rollup, half-hour ones from
// the raw rows) and with filters against a recount from the survey rows.
func TestAnalyticsMatchesRows(t *testing.T) {
	p := newPipeline(t)
	rng := rand.New(rand.NewPCG(3, 5))
	tenantID, ctx := p.tenant(t, "Acme")
	_, otherCtx := p.tenant(t, "Other")
	base := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC) // over Europe's DST change
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	for i := range 150 {
		p.clock = base.Add(time.Duration(rng.IntN(5*24*60)) * time.Minute)
		_, tok := p.send(t, ctx, fmt.Sprintf("c%d", i), pick("", "ann", "bob"), pick("red", "blue"), pick("email", "chat", ""))
		if rng.IntN(3) > 0 {
			if _, err := p.svc.Rate(ctx, tok, 1+rng.IntN(5)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another tenant's surveys never count.
	p.clock = base.Add(time.Hour)
	p.send(t, otherCtx, "x1", "ann", "red", "email")
	var rows []db.Survey
	if err := p.db.NewSelect().Model(&rows).Where("tenant_id = ?", tenantID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := expect{rows}
	all := func(time.Time, db.Survey) bool { return true }
	for _, tz := range []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"} {
		for _, f := range []survey.AnalyticsFilter{{}, {AgentID: "ann"}, {TeamID: "red", Channel: "chat"}} {
			q := survey.AnalyticsQuery{StartDate: "2026-03-27", EndDate: "2026-03-30", Timezone: tz, Filter: f}
			name := fmt.Sprintf("%s/%+v", tz, f)
			a, err := p.svc.Analytics(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if want := e.counts(a.Query, all); a.Counts != want {
				t.Errorf("%s totals %+v, want %+v", name, a.Counts, want)
			}
			if a.Counts.Sent == 0 {
				t.Errorf("%s: no surveys in range; the test checks nothing", name)
			}
			for _, g := range []survey.Granularity{survey.Day, survey.Week, survey.Month} {
				trend, err := p.svc.Trend(ctx, q, g)
				if err != nil {
					t.Fatal(err)
				}
				var sum survey.Counts
				for _, pt := range trend {
					want := e.counts(a.Query, func(local time.Time, _ db.Survey) bool {
						return bucketOf(local, g, a.Query.StartDate) == pt.Date
					})
					if pt.Counts != want {
						t.Errorf("%s %s %s: %+v, want %+v", name, g, pt.Date, pt.Counts, want)
					}
					sum.Sent += pt.Sent
				}
				if sum.Sent != a.Sent {
					t.Errorf("%s %s: trend sums to %d, totals say %d", name, g, sum.Sent, a.Sent)
				}
				// Read together, the totals are the trend's sum: the same figures.
				both, bothTrend, err := p.svc.AnalyticsAndTrend(ctx, q, g)
				if err != nil {
					t.Fatal(err)
				}
				if both.Counts != a.Counts || both.Query != a.Query || both.Period != a.Period {
					t.Errorf("%s %s: read with the trend %+v, alone %+v", name, g, both, a)
				}
				if !slices.Equal(bothTrend, trend) {
					t.Errorf("%s %s: trend read with the totals %+v, alone %+v", name, g, bothTrend, trend)
				}
			}
			if g := len(mustTrend(t, p.svc, ctx, q, survey.Day)); g != 4 {
				t.Errorf("%s: %d day buckets, want 4", name, g)
			}
			for _, by := range []survey.Dimension{survey.ByAgent, survey.ByTeam, survey.ByChannel} {
				bd, err := p.svc.Breakdown(ctx, q, by)
				if err != nil {
					t.Fatal(err)
				}
				total := 0
				for _, b := range bd {
					want := e.counts(a.Query, func(_ time.Time, s db.Survey) bool { return dimOf(s, by) == b.Key })
					if b.Counts != want {
						t.Errorf("%s by %s %q: %+v, want %+v", name, by, b.Key, b.Counts, want)
					}
					total += b.Sent
				}
				if total != a.Sent {
					t.Errorf("%s by %s: rows sum to %d, totals say %d", name, by, total, a.Sent)
				}
				// Read in one statement, every part as read alone: totals
				// from the trend, or a query of their own without one.
				for _, g := range []survey.Granularity{survey.Week, ""} {
					rep, err := p.svc.Report(ctx, q, survey.ReportOf{Totals: true, Trend: g, Breakdown: by})
					if err != nil {
						t.Fatal(err)
					}
					if rep.Analytics.Counts != a.Counts || rep.Analytics.Query != a.Query || rep.Analytics.Period != a.Period {
						t.Errorf("%s by %s trend %q: totals in one statement %+v, alone %+v", name, by, g, rep.Analytics, a)
					}
					if !slices.Equal(rep.Breakdown, bd) {
						t.Errorf("%s by %s trend %q: breakdown in one statement %+v, alone %+v", name, by, g, rep.Breakdown, bd)
					}
					if g == "" && rep.Trend != nil {
						t.Errorf("%s by %s: a trend nobody asked for: %+v", name, by, rep.Trend)
					}
					if g != "" && !slices.Equal(rep.Trend, mustTrend(t, p.svc, ctx, q, g)) {
						t.Errorf("%s by %s: trend in one statement %+v, alone %+v", name, by, rep.Trend, mustTrend(t, p.svc, ctx, q, g))
					}
				}
			}
		}
	}
	// An empty range: zeros, no average, every bucket present.
	q := survey.AnalyticsQuery{StartDate: "2025-01-01", EndDate: "2025-01-03"}
	a, err := p.svc.Analytics(ctx, q)
	if err != nil || a.Sent != 0 || a.Responses() != 0 || a.AverageRating() != nil || a.ResponseRate() != 0 {
		t.Fatalf("empty range: %+v %v", a, err)
	}
	if tr := mustTrend(t, p.svc, ctx, q, survey.Day); len(tr) != 3 || tr[2].Date != "2025-01-03" || tr[2].Sent != 0 {
		t.Fatalf("empty trend: %+v", tr)
	}
	if both, tr, err := p.svc.AnalyticsAndTrend(ctx, q, survey.Week); err != nil || both.Counts != (survey.Counts{}) || len(tr) != 1 {
		t.Fatalf("empty range with its trend: %+v %+v %v", both, tr, err)
	}
	if rep, err := p.svc.Report(ctx, q, survey.ReportOf{Totals: true, Trend: survey.Week, Breakdown: survey.ByAgent}); err != nil ||
		rep.Analytics.Counts != (survey.Counts{}) || len(rep.Trend) != 1 || len(rep.Breakdown) != 0 {
		t.Fatalf("empty range in one statement: %+v %v", rep, err)
	}
	// Bad input is refused as Analytics refuses it.
	bad := survey.AnalyticsQuery{StartDate: "2026-03-10", EndDate: "2026-03-01"}
	_, errAlone := p.svc.Analytics(ctx, bad)
	if _, _, err := p.svc.AnalyticsAndTrend(ctx, bad, survey.Day); err == nil || err.Error() != errAlone.Error() {
		t.Fatalf("start after end: %v, Analytics says %v", err, errAlone)
	}
	if _, err := p.svc.Report(ctx, q, survey.ReportOf{Breakdown: "SIZE"}); errs.CodeOf(err) != errs.Invalid {
		t.Fatalf("a breakdown by SIZE: %v, want invalid", err)
	}
}

func mustTrend(t *testing.T, svc *survey.Service, ctx context.Context, q survey.AnalyticsQuery, g survey.Granularity) []survey.TrendPoint {
	t.Helper()
	tr, err := svc.Trend(ctx, q, g)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// bucketOf is the trend date of a local time: its day, Monday or 1st,
// but never before the period start.
func bucketOf(local time.Time, g survey.Granularity, start string) string {
	d := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	switch g {
	case survey.Week:
		d = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case survey.Month:
		d = d.AddDate(0, 0, 1-d.Day())
	}
	if s := d.Format(survey.DateLayout); s > start {
		return s
	}
	return start
}

func dimOf(s db.Survey, by survey.Dimension) string {
	switch by {
	case survey.ByAgent:
		return s.AgentID
	case survey.ByTeam:
		return s.TeamID
	}
	return s.Channel
}
