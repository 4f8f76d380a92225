package db_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// Long single-bucket ranges read whole months from survey_stats_monthly and
// the edge days from survey_stats_daily; every answer must equal a count of
// the raw rows, for ranges that start and end mid-month, on month starts,
// inside one month, and after the rollups took later changes (ratings,
// deletes) through the triggers.
func TestMonthlyRollupAnswersLikeRows(t *testing.T) {
	dsn, appDB := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	tenantID := newTenant(t, admin, "Months")
	rng := rand.New(rand.NewPCG(7, 9))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 600 {
		sent := base.Add(time.Duration(rng.Int64N(int64(420 * 24 * time.Hour))))
		var rating any
		if rng.IntN(3) > 0 {
			rating = 1 + rng.IntN(5)
		}
		_, err := admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for, sent_at, rating, agent_id)
			VALUES (?, ?, ?, 'm@example.com', 'sent', ?, ?, ?, ?, ?)`,
			tenantID, fmt.Sprintf("csat_m%05d", i), fmt.Sprint(i), sent, sent, sent, rating, fmt.Sprintf("agent-%d", rng.IntN(4))).Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	bound := db.WithTenant(ctx, tenantID)
	compareWithRows(t, bound, admin, appDB, tenantID, "unfolded")
	if n, err := db.FoldStats(bound, appDB, tenantID); err != nil || n != 600 {
		t.Fatalf("first fold: folded %d, %v; want the 600 inserts", n, err)
	}
	compareWithRows(t, bound, admin, appDB, tenantID, "folded")
	// Later changes go through the statement triggers too: the rollups hold
	// the first 600, the deltas the rest.
	if _, err := admin.NewRaw("UPDATE surveys SET rating = 5, status = 'completed' WHERE id IN (SELECT id FROM surveys WHERE rating IS NULL LIMIT 40)").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.NewRaw("DELETE FROM surveys WHERE id IN (SELECT id FROM surveys WHERE rating = 2 LIMIT 10)").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	compareWithRows(t, bound, admin, appDB, tenantID, "half folded")

	// A change whose transaction is still open when a fold runs is not in
	// that fold's snapshot: the fold leaves it, reads count it once it
	// commits, and the next fold adds it.
	tx, err := appDB.BeginTx(bound, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.NewRaw("UPDATE surveys SET rating = 1 WHERE tenant_id = ? AND id IN (SELECT id FROM surveys WHERE tenant_id = ? AND rating = 4 ORDER BY id LIMIT 3)",
		tenantID, tenantID).Exec(bound); err != nil {
		t.Fatal(err)
	}
	if n, err := db.FoldStats(bound, appDB, tenantID); err != nil || n != 40*2+10 {
		t.Fatalf("fold beside an open transaction: folded %d, %v; want the 90 committed deltas", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	compareWithRows(t, bound, admin, appDB, tenantID, "committed after a fold")
	if n, err := db.FoldStats(bound, appDB, tenantID); err != nil || n != 3*2 {
		t.Fatalf("fold after the commit: folded %d, %v; want its 6 deltas", n, err)
	}
	if n, err := db.FoldStats(bound, appDB, tenantID); err != nil || n != 0 {
		t.Fatalf("fold with nothing new: folded %d, %v", n, err)
	}
	compareWithRows(t, bound, admin, appDB, tenantID, "folded again")
	// Folded deltas go, at a later fold, once no running transaction (in
	// any database of the cluster: other test packages run beside this one)
	// is older than them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left int
		if err := admin.NewRaw("SELECT count(*) FROM survey_stat_deltas WHERE tenant_id = ?", tenantID).Scan(ctx, &left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d folded deltas still kept after 20 s", left)
		}
		if _, err := db.FoldStats(bound, appDB, tenantID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // poll: the cluster's oldest transaction moves on its own
	}
	compareWithRows(t, bound, admin, appDB, tenantID, "deltas gone")
}

// compareWithRows checks single-bucket stats over several ranges, in all and
// by agent, against a count of the raw rows.
func compareWithRows(t *testing.T, ctx context.Context, admin, appDB *bun.DB, tenantID, stage string) {
	t.Helper()
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	ranges := [][2]time.Time{
		{day(2025, 1, 15), day(2026, 2, 10)}, // mid-month to mid-month, a year of whole months inside
		{day(2025, 3, 1), day(2025, 9, 1)},   // month starts exactly
		{day(2025, 2, 27), day(2025, 4, 2)},  // one whole month inside: days only
		{day(2025, 2, 27), day(2025, 5, 2)},  // two whole months inside
		{day(2025, 5, 3), day(2025, 5, 20)},  // inside one month: no whole month
		{day(2025, 1, 3), day(2026, 2, 27)},  // both ends' months read whole, their outside days taken off
		{day(2025, 3, 30), day(2025, 7, 5)},  // both ends' days added to the months inside
		{day(2025, 2, 2), day(2025, 4, 30)},  // two months whole and the days either side taken off
	}
	// In all, by agent, and one agent's (the function's dim_value reads,
	// answered under that agent's key).
	views := []struct{ group, agent string }{{"", ""}, {db.DimAgent, ""}, {"", "agent-1"}}
	for _, r := range ranges {
		for _, v := range views {
			group := v.group
			q := db.StatsQuery{Bounds: []time.Time{r[0], r[1]}, GroupBy: group, AgentID: v.agent}
			got, err := db.SurveyStats(ctx, appDB, tenantID, q)
			if err != nil {
				t.Fatal(err)
			}
			var want []struct {
				Key                      string
				Sent, R1, R2, R3, R4, R5 int
			}
			keyExpr := "''"
			if group != "" || v.agent != "" {
				keyExpr = "coalesce(agent_id, '')"
			}
			err = admin.NewRaw(`SELECT `+keyExpr+` AS key, count(*) AS sent,
					count(*) FILTER (WHERE rating = 1) AS r1, count(*) FILTER (WHERE rating = 2) AS r2,
					count(*) FILTER (WHERE rating = 3) AS r3, count(*) FILTER (WHERE rating = 4) AS r4,
					count(*) FILTER (WHERE rating = 5) AS r5
				FROM surveys WHERE tenant_id = ? AND sent_at >= ? AND sent_at < ? AND (? = '' OR agent_id = ?)
				GROUP BY 1 ORDER BY 1`,
				tenantID, r[0], r[1], v.agent, v.agent).Scan(ctx, &want)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("%v: no surveys in range", r)
			}
			gotBy := map[string]db.StatRow{}
			for _, g := range got {
				gotBy[g.Key] = g
			}
			if len(got) != len(want) {
				t.Errorf("%s %v %+v: %d rows, want %d", stage, r, v, len(got), len(want))
			}
			for _, w := range want {
				g := gotBy[w.Key]
				if g.Bucket != 1 || g.Sent != w.Sent || g.Ratings != [5]int{w.R1, w.R2, w.R3, w.R4, w.R5} {
					t.Errorf("%s %v %+v key %q: got %+v, want %+v", stage, r, v, w.Key, g, w)
				}
			}
		}
	}
}

// monthsFor picks, at each end of a range, the month start nearer in days:
// the days between are added (a month start inside) or taken off (outside).
func TestMonthsFor(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name       string
		start, end time.Time
		m0, m1     time.Time // zero: no months
	}{
		{"a year from the 2nd", day(2025, 12, 2), day(2026, 12, 3), day(2025, 12, 1), day(2026, 12, 1)},
		{"month starts", day(2025, 3, 1), day(2025, 9, 1), day(2025, 3, 1), day(2025, 9, 1)},
		{"late start, early end", day(2025, 3, 28), day(2025, 7, 4), day(2025, 4, 1), day(2025, 7, 1)},
		{"early start, late end", day(2025, 3, 3), day(2025, 6, 29), day(2025, 3, 1), day(2025, 7, 1)},
		{"a tie adds the days", day(2025, 4, 16), day(2025, 8, 1), day(2025, 5, 1), day(2025, 8, 1)},
		{"one whole month inside", day(2025, 2, 27), day(2025, 4, 2), time.Time{}, time.Time{}},
		{"two whole months inside", day(2025, 2, 27), day(2025, 5, 2), day(2025, 3, 1), day(2025, 5, 1)},
		{"inside one month", day(2025, 5, 3), day(2025, 5, 20), time.Time{}, time.Time{}},
		{"not whole days", day(2025, 1, 1).Add(time.Hour), day(2026, 1, 1), time.Time{}, time.Time{}},
	} {
		m0, m1, ok := db.MonthsFor(c.start, c.end)
		if ok != !c.m0.IsZero() || ok && (!m0.Equal(c.m0) || !m1.Equal(c.m1)) {
			t.Errorf("%s: monthsFor(%s, %s) = %s, %s, %v; want %s, %s",
				c.name, c.start.Format(time.DateOnly), c.end.Format(time.DateOnly), m0, m1, ok, c.m0, c.m1)
		}
	}
}

// TestUnfoldedDeltasBoundByWatermark: the unfolded deltas are read as a
// range of the primary key from the watermark's lowest unseen transaction,
// not as all the tenant's index entries filtered (a busy tenant's folded,
// deleted and not yet vacuumed deltas were tens of thousands of them), in
// the generic plan the prepared statements run.
func TestUnfoldedDeltasBoundByWatermark(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	tenantID := newTenant(t, admin, "Watermark")
	conn, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"SET plan_cache_mode = force_generic_plan",
		"PREPARE csat_test_unfolded (text) AS SELECT count(*) FROM (" + db.UnfoldedDeltas("$1") + ") AS d",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	all := explain(t, conn, "EXPLAIN EXECUTE csat_test_unfolded(?)", tenantID)
	if !regexp.MustCompile(`Index Cond: \(\(tenant_id = \$1\) AND \(xid >= \$\d+\)\)`).MatchString(all) {
		t.Errorf("the unfolded deltas are not a range from the watermark:\n%s", all)
	}
}
