package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/csat/csat/db"
	"github.com/csat/csat/jobs"
	"github.com/csat/csat/secret"
)

// floors measures what no request can beat: one indexed single-row SELECT
// and one single-row UPDATE (autocommit) through the service's own pool.
func (b *bench) floors(ctx context.Context) []result {
	// The service's pool connects as the row-level-security role: a
	// statement sees rows only with its tenant bound (sent in the same
	// round trip), as in every request.
	idb := b.app.DB
	ctx = db.WithTenant(ctx, b.big.ID)
	ids := b.sampleIDs(ctx, 5000)
	pick := func(w, n int) string { return ids[(n*7919+w)%len(ids)] }
	sel := drive(ctx, "floor_select", "floor", b.o.Concurrency, b.o.Duration/2, func(ctx context.Context, w, n int) error {
		var sv db.Survey
		return idb.NewSelect().Model(&sv).Where("s.tenant_id = ? AND s.id = ?", b.big.ID, pick(w, n)).Scan(ctx)
	})
	upd := drive(ctx, "floor_update", "floor", b.o.Concurrency, b.o.Duration/2, func(ctx context.Context, w, n int) error {
		_, err := idb.NewUpdate().Table("surveys").Set("updated_at = now()").
			Where("tenant_id = ? AND id = ?", b.big.ID, pick(w, n)).Exec(ctx)
		return err
	})
	return []result{sel, upd}
}

// sampleIDs returns up to n ids of the measured tenant, spread over its rows.
func (b *bench) sampleIDs(ctx context.Context, n int) []string {
	var ids []string
	_ = b.bdb.NewRaw("SELECT id FROM surveys TABLESAMPLE SYSTEM (?) WHERE tenant_id = ? LIMIT ?",
		min(100.0, float64(n)*300/float64(b.big.N)), b.big.ID, n).Scan(ctx, &ids)
	if len(ids) == 0 {
		_ = b.bdb.NewRaw("SELECT id FROM surveys WHERE tenant_id = ? LIMIT ?", b.big.ID, n).Scan(ctx, &ids)
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

type scenario struct {
	name, kind string
	fn         op
	probe      bool // skip with a note when the endpoint is not there (404)
}

// scenarios drives every scenario against tenant t; only, when set, picks
// some by name, and their results are named with the suffix (the
// reference runs for flatness, the runs without row-level security).
func (b *bench) scenarios(ctx context.Context, t tenantData, d time.Duration, only map[string]bool, suffix string) []result {
	c := httpClient(b.o.Concurrency)
	key := b.keys[t.ID]
	api := b.url + "/api/v1/csat"
	today := b.now.Format("2006-01-02")
	days := func(n int) string { return b.now.AddDate(0, 0, -n).Format("2006-01-02") }
	live := t.Live
	list := []scenario{
		{name: "intake", kind: "write", fn: func(ctx context.Context, w, n int) error {
			body := fmt.Sprintf(`{"conversation_id":"bench-%s-%d","contact_email":"new%d@example.com","contact_name":"New Customer",`+
				`"agent_id":"agent_%d","team_id":"team_%d","channel":"chat","locale":"en"}`, b.runID, n, n, n%60, n%8)
			return do(ctx, c, "POST", api+"/surveys", key, body, http.StatusCreated)
		}},
		{name: "one_click", kind: "write", fn: func(ctx context.Context, w, n int) error {
			i := 2 * ((n * 7919) % max(1, live/2)) // even live rows: one rating each, so the scanner rule never trips
			u := fmt.Sprintf("%s/rate?token=%s&rating=%d", api, benchToken(t.ID, i), 4+i%4/3)
			return do(ctx, c, "GET", u, "", "", http.StatusOK)
		}},
		{name: "submit", kind: "write", fn: func(ctx context.Context, w, n int) error {
			i := 1 + 2*((n*7919)%max(1, live/2)) // odd live rows
			body := fmt.Sprintf(`{"rating":%d,"feedback":"Thanks, sorted quickly (%d)"}`, 3+n%3, n)
			return do(ctx, c, "POST", api+"/"+benchToken(t.ID, i)+"/submit", "", body, http.StatusOK)
		}},
		{name: "list", kind: "read", fn: func(ctx context.Context, w, n int) error {
			return do(ctx, c, "GET", api+"/surveys?limit=20", key, "", http.StatusOK)
		}},
		{name: "list_deep_offset", kind: "read", fn: func(ctx context.Context, w, n int) error {
			return do(ctx, c, "GET", fmt.Sprintf("%s/surveys?limit=20&offset=%d", api, t.N/2), key, "", http.StatusOK)
		}},
		{name: "analytics_30d", kind: "read", probe: true, fn: func(ctx context.Context, w, n int) error {
			return do(ctx, c, "GET", api+"/analytics?start_date="+days(30)+"&end_date="+today, key, "", http.StatusOK)
		}},
		{name: "analytics_365d", kind: "read", probe: true, fn: func(ctx context.Context, w, n int) error {
			return do(ctx, c, "GET", api+"/analytics?start_date="+days(365)+"&end_date="+today, key, "", http.StatusOK)
		}},
		b.graphqlPage(c, key),
		b.graphqlAnalytics(c, key),
	}
	var out []result
	for _, s := range list {
		if only != nil && !only[s.name] {
			continue
		}
		name := s.name + suffix
		if s.probe {
			if err := s.fn(ctx, 0, 0); err != nil {
				out = append(out, result{Name: name, Kind: s.kind, Note: "skipped: " + err.Error()})
				continue
			}
		}
		out = append(out, drive(ctx, name, s.kind, b.o.Concurrency, d, s.fn))
	}
	return out
}

// graphqlPage walks the surveys connection page by page with its cursor
// (keyset), each client on its own walk, restarting after 50 pages.
func (b *bench) graphqlPage(c *http.Client, key string) scenario {
	var mu sync.Mutex
	cursors := map[int]string{}
	pages := map[int]int{}
	const q = `query($after: String) { surveys(first: 20, after: $after) { edges { cursor node { id status rating } } pageInfo { hasNextPage endCursor } } }`
	return scenario{name: "graphql_surveys", kind: "read", probe: true, fn: func(ctx context.Context, w, n int) error {
		mu.Lock()
		after := cursors[w]
		mu.Unlock()
		vars := map[string]any{}
		if after != "" {
			vars["after"] = after
		}
		var resp struct {
			Data struct {
				Surveys struct {
					PageInfo struct {
						HasNextPage bool   `json:"hasNextPage"`
						EndCursor   string `json:"endCursor"`
					} `json:"pageInfo"`
				} `json:"surveys"`
			} `json:"data"`
		}
		if err := graphql(ctx, c, b.url, key, q, vars, &resp); err != nil {
			return err
		}
		mu.Lock()
		pages[w]++
		cursors[w] = resp.Data.Surveys.PageInfo.EndCursor
		if !resp.Data.Surveys.PageInfo.HasNextPage || pages[w] >= 50 {
			cursors[w], pages[w] = "", 0
		}
		mu.Unlock()
		return nil
	}}
}

// graphqlAnalytics asks for a year of analytics with a weekly trend and a
// breakdown by agent.
func (b *bench) graphqlAnalytics(c *http.Client, key string) scenario {
	const q = `query($from: Date!, $to: Date!) { csatAnalytics(startDate: $from, endDate: $to) {
		totalSurveysSent totalResponses responseRate averageRating satisfactionScore
		ratingDistribution { rating count }
		trend(granularity: WEEK) { date surveysSent responses averageRating }
		breakdown(by: AGENT) { key surveysSent responses averageRating } } }`
	vars := map[string]any{"from": b.now.AddDate(-1, 0, 0).Format("2006-01-02"), "to": b.now.Format("2006-01-02")}
	return scenario{name: "graphql_analytics", kind: "read", probe: true, fn: func(ctx context.Context, w, n int) error {
		return graphql(ctx, c, b.url, key, q, vars, nil)
	}}
}

func graphql(ctx context.Context, c *http.Client, base, key, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/graphql", bytesReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	buf := readBody(resp)
	defer bodies.Put(buf)
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("POST /graphql: 404, the GraphQL API is not mounted")
	}
	if out == nil && resp.StatusCode == http.StatusOK && !bytes.Contains(buf.Bytes(), []byte(`"errors"`)) {
		return nil // nothing to read from it, and no error in it
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(buf.Bytes(), &env); err != nil {
		return fmt.Errorf("graphql: %d, not JSON: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || len(env.Errors) > 0 {
		msg := ""
		if len(env.Errors) > 0 {
			msg = env.Errors[0].Message
		}
		return fmt.Errorf("graphql: %d %s", resp.StatusCode, msg)
	}
	if out != nil {
		return json.Unmarshal(append(append([]byte(`{"data":`), env.Data...), '}'), out)
	}
	return nil
}

// flatness is p95 at the measured size over p95 at the reference size.
func flatness(big, ref []result) map[string]float64 {
	out := map[string]float64{}
	for _, r := range ref {
		name := r.Name[:len(r.Name)-len("_ref")]
		for _, s := range big {
			if s.Name == name && s.P95 > 0 && r.P95 > 0 {
				out[name] = round(s.P95/r.P95, 2)
			}
		}
	}
	return out
}

// setRatios puts each scenario's throughput against its floor: reads
// against the SELECT floor, writes against the UPDATE floor.
func setRatios(rs []result, floors []result) {
	for i := range rs {
		f := floors[0]
		if rs[i].Kind == "write" {
			f = floors[1]
		}
		rs[i].FloorRPS = f.RPS
		if f.RPS > 0 {
			rs[i].Ratio = round(rs[i].RPS/f.RPS, 3)
		}
	}
}

type waveResult struct {
	Emails      int     `json:"emails"`
	Seconds     float64 `json:"seconds"`
	LatenessP50 float64 `json:"lateness_p50_s"`
	LatenessP95 float64 `json:"lateness_p95_s"`
	LatenessMax float64 `json:"lateness_max_s"`
	Accepted    int     `json:"accepted"`
	SpreadS     float64 `json:"due_spread_s"` // surveys due evenly over this; 0: all at once
	EnqueueS    float64 `json:"enqueue_s"`
	Note        string  `json:"note,omitempty"`
}

// wave stores o.Wave pending surveys of a fresh tenant due over spread
// (evenly; all at the same moment when spread is 0), enqueues their sends
// as intake would have, and waits until the SMTP sink accepted every
// email. Lateness is each email's acceptance minus its survey's due time.
func (b *bench) wave(ctx context.Context, spread time.Duration) (waveResult, error) {
	res := waveResult{Emails: b.o.Wave, SpreadS: spread.Seconds()}
	t, err := b.tenants.CreateTenant(ctx, fmt.Sprintf("Bench wave over %s", spread))
	if err != nil {
		return res, err
	}
	// The lead covers storing and analyzing the wave and queueing it with
	// time to spare: a survey queued less than jobs.GroupLead before it is
	// due gets a task of its own instead of joining its second's, which is
	// not the wave this measures (on a busy machine the analyze of a million
	// surveys alone took seconds).
	lead := 5*time.Second + time.Duration(b.o.Wave)*500*time.Microsecond
	first := time.Now().UTC().Add(lead).Truncate(time.Millisecond)
	dueOf := func(i int) time.Time {
		return first.Add(time.Duration(int64(spread) * int64(i) / int64(b.o.Wave))).Truncate(time.Millisecond)
	}
	dues := map[string]time.Time{}
	batch := make([]db.Survey, 0, 1000)
	var ids []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := b.bdb.NewInsert().Model(&batch).Exec(ctx)
		batch = batch[:0]
		return err
	}
	for i := range b.o.Wave {
		now := time.Now().UTC()
		sv := db.Survey{TenantID: t.ID, ID: secret.ID("csat_"), ConversationID: fmt.Sprintf("wave-%d", i),
			ContactEmail: fmt.Sprintf("wave%d@example.com", i), ContactName: "Wave Customer", Channel: "email",
			Status: db.StatusPending, ResolvedAt: dueOf(i).Add(-2 * time.Hour), ScheduledFor: dueOf(i), CreatedAt: now, UpdatedAt: now}
		ids = append(ids, sv.ID)
		dues[sv.ContactEmail] = sv.ScheduledFor
		if batch = append(batch, sv); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return res, fmt.Errorf("insert wave: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("insert wave: %w", err)
	}
	// A real wave was taken in over the hours of its tenants' delay, time
	// enough for autovacuum to analyze the new rows (see the migration
	// 20260110000002_surveys_analyze_sooner); this one was stored a moment
	// ago, so analyze now, as the planner would otherwise take the new
	// tenant for a handful of rows.
	if _, err := b.bdb.ExecContext(ctx, "ANALYZE surveys"); err != nil {
		return res, fmt.Errorf("analyze wave: %w", err)
	}
	b.sink.reset()
	if time.Until(first) < jobs.GroupLead {
		res.Note = "the wave was queued less than jobs.GroupLead before it was due: a task per survey, not the grouped wave"
	}
	start := time.Now()
	sched := &jobs.Client{Asynq: b.app.Queue}
	var next atomic.Int64
	var wg sync.WaitGroup
	var enqErr atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(ids); i = int(next.Add(1)) - 1 {
				if err := sched.ScheduleSend(ctx, t.ID, ids[i], dueOf(i)); err != nil {
					enqErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	res.EnqueueS = round(time.Since(start).Seconds(), 2)
	if e, ok := enqErr.Load().(error); ok {
		return res, fmt.Errorf("enqueue wave: %w", e)
	}
	if time.Now().After(first) {
		res.Note = "enqueueing took longer than the lead time: some tasks were due before they were queued"
	}

	last := dueOf(b.o.Wave - 1)
	deadline := last.Add(5 * time.Minute)
	for b.sink.count() < b.o.Wave && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	var late []time.Duration
	var lastAt time.Time
	for to, ats := range b.sink.acceptedTo() {
		due, ok := dues[to]
		if !ok {
			continue
		}
		for _, at := range ats {
			res.Accepted++
			late = append(late, max(0, at.Sub(due)))
			if at.After(lastAt) {
				lastAt = at
			}
		}
	}
	if len(late) == 0 {
		return res, nil
	}
	slices.Sort(late)
	res.Seconds = round(max(0, lastAt.Sub(first)).Seconds(), 2)
	res.LatenessP50 = round(pct(late, 0.50)/1000, 2)
	res.LatenessP95 = round(pct(late, 0.95)/1000, 2)
	res.LatenessMax = round(late[len(late)-1].Seconds(), 2)
	if res.Accepted < res.Emails {
		res.Note = fmt.Sprintf("only %d of %d emails accepted within 5 minutes", res.Accepted, res.Emails)
	}
	return res, nil
}

// refreshDerived recomputes the tables derived from surveys after a bulk
// load that ran with the triggers off: COPY would otherwise fire them per
// row, and one grouped INSERT..SELECT is much faster. The counts and the
// rollups are rebuilt side by side (two cores), each with enough work_mem
// to aggregate in memory instead of spilling sorts to disk.
func refreshDerived(ctx context.Context, bdb *bun.DB) error {
	var g errgroup.Group
	for _, rebuild := range []func(context.Context, bun.IDB) error{db.RecountSurveys, db.RebuildSurveyStats} {
		g.Go(func() error {
			return bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, "SET LOCAL work_mem = '512MB'"); err != nil {
					return err
				}
				return rebuild(ctx, tx)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Rebuilt in bulk: give the planner their statistics now, and mark their
	// pages all-visible, as autovacuum would soon after so many inserts
	// (without statistics the planner sorts a breakdown's rows by text;
	// without the visibility map an analytics read cannot be index-only).
	if _, err := bdb.ExecContext(ctx, "VACUUM ANALYZE survey_counts, survey_stats_hourly, survey_stats_daily, survey_stats_monthly"); err != nil {
		return fmt.Errorf("vacuum rollups: %w", err)
	}
	return nil
}
