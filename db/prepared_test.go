package db_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/testenv"
)

var allStatuses = []string{db.StatusPending, db.StatusSent, db.StatusCompleted, db.StatusExpired}

// TestListPagePrepared: the unfiltered page (the prepared listPage) answers
// exactly what the statement the filtered pages build answers for a filter
// that keeps every survey, at every depth, past the end included; the
// total counts the changes not folded yet (seeded surveys are all
// unfolded).
func TestListPagePrepared(t *testing.T) {
	dsn, app := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	tenantID := seedScanSurveys(t, admin, 30)
	other := seedScanSurveys(t, admin, 3)
	ctx := db.WithTenant(context.Background(), tenantID)
	for _, tc := range []struct{ limit, offset, rows int }{
		{20, 0, 20}, {1, 0, 1}, {100, 0, 30}, {20, 20, 10}, {7, 29, 1}, {20, 30, 0}, {20, 500, 0},
	} {
		t.Run(fmt.Sprintf("limit-%d-offset-%d", tc.limit, tc.offset), func(t *testing.T) {
			got, total, err := db.ListSurveys(ctx, app, tenantID, db.SurveyFilter{}, tc.limit, tc.offset)
			if err != nil {
				t.Fatal(err)
			}
			want, wantTotal, err := db.ListSurveys(ctx, app, tenantID, db.SurveyFilter{Statuses: allStatuses}, tc.limit, tc.offset)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.rows || total != 30 || wantTotal != 30 {
				t.Fatalf("%d rows, total %d (unprepared: %d rows, total %d)", len(got), total, len(want), wantTotal)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("prepared page\n%+v\nunprepared\n%+v", got, want)
			}
		})
	}
	// The tenant walls hold as for any statement: the other tenant's page
	// has only its rows, and a binding to another tenant sees nothing.
	rows, total, err := db.ListSurveys(db.WithTenant(context.Background(), other), app, other, db.SurveyFilter{}, 20, 0)
	if err != nil || len(rows) != 3 || total != 3 {
		t.Fatalf("other tenant: %d rows, total %d, %v", len(rows), total, err)
	}
	rows, total, err = db.ListSurveys(db.WithTenant(context.Background(), other), app, tenantID, db.SurveyFilter{}, 20, 0)
	if err != nil || len(rows) != 0 || total != 0 {
		t.Errorf("bound to another tenant: %d rows, total %d, %v", len(rows), total, err)
	}
}

// TestListPagePreparedOnce: a connection prepares the page once and runs
// it with the generic plan from then on; a connection whose statement went
// missing is replaced and the page still answers.
func TestListPagePreparedOnce(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	tenantID := seedScanSurveys(t, admin, 5)
	one, err := db.Open(db.AppDSN(dsn), 1) // every call on the same connection
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	ctx := db.WithTenant(context.Background(), tenantID)
	list := func() {
		t.Helper()
		rows, total, err := db.ListSurveys(ctx, one, tenantID, db.SurveyFilter{}, 20, 0)
		if err != nil || len(rows) != 5 || total != 5 {
			t.Fatalf("list: %d rows, total %d, %v", len(rows), total, err)
		}
	}
	plans := func() (n, generic, custom int) {
		t.Helper()
		err := one.NewRaw(`SELECT count(*), coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)
			FROM pg_prepared_statements WHERE name = 'csat_list_page'`).Scan(context.Background(), &n, &generic, &custom)
		if err != nil {
			t.Fatal(err)
		}
		return n, generic, custom
	}
	for range 8 {
		list()
	}
	if n, generic, custom := plans(); n != 1 || generic != 8 || custom != 0 {
		t.Errorf("prepared %d times; %d generic and %d custom plans, want 1; 8 and 0", n, generic, custom)
	}
	// The statement goes missing: the connection is given up and the page
	// prepared again on a new one.
	var pid, newPID int
	if err := one.NewRaw("SELECT pg_backend_pid()").Scan(context.Background(), &pid); err != nil {
		t.Fatal(err)
	}
	if _, err := one.ExecContext(context.Background(), "DEALLOCATE csat_list_page"); err != nil {
		t.Fatal(err)
	}
	list()
	if err := one.NewRaw("SELECT pg_backend_pid()").Scan(context.Background(), &newPID); err != nil {
		t.Fatal(err)
	}
	if newPID == pid {
		t.Error("the connection that lost its statement was kept")
	}
	if n, generic, _ := plans(); n != 1 || generic != 1 {
		t.Errorf("after the loss: prepared %d times, %d generic plans; want 1 and 1", n, generic)
	}
}

// TestListPageNotInTx: the prepared page sets its plan mode LOCAL, which
// in a transaction would outlast the statement: it is refused there.
func TestListPageNotInTx(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	tenantID := seedScanSurveys(t, admin, 2)
	ctx := db.WithTenant(context.Background(), tenantID)
	one, err := db.Open(db.AppDSN(dsn), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	for _, prepared := range []bool{false, true} { // the connection has it prepared the second time
		err := one.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, _, err := db.ListSurveys(ctx, tx, tenantID, db.SurveyFilter{}, 20, 0)
			return err
		})
		if err == nil || !errors.Is(err, db.ErrPreparedInTx) {
			t.Errorf("list in a transaction (prepared before: %v): %v, want ErrPreparedInTx", prepared, err)
		}
		if _, _, err := db.ListSurveys(ctx, one, tenantID, db.SurveyFilter{}, 20, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Filtered pages are not prepared and run anywhere.
	err = one.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rows, total, err := db.ListSurveys(ctx, tx, tenantID, db.SurveyFilter{Statuses: allStatuses}, 20, 0)
		if err == nil && (len(rows) != 2 || total != 2) {
			err = fmt.Errorf("%d rows, total %d", len(rows), total)
		}
		return err
	})
	if err != nil {
		t.Errorf("filtered list in a transaction: %v", err)
	}
}

// TestKeyPreparedInTransactions: the writes' prepared statements run inside
// transactions: a connection prepares each once, the statement outlives a
// rolled-back transaction, and the answer's update, deferred, rides with
// the COMMIT and fails it when the row moved.
func TestKeyPreparedInTransactions(t *testing.T) {
	f := seedTwoTenants(t)                   // A's survey is sent, its token "a"
	one, err := db.Open(db.AppDSN(f.dsn), 1) // every transaction on the same connection
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	answer := func(from string) (pid int, err error) {
		err = one.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
			sv, err := db.GetSurveyByToken(ctx, tx, f.A, secret.Hash("a"), true)
			if err != nil {
				return err
			}
			if err := tx.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &pid); err != nil {
				return err
			}
			rating, now := 2, time.Now().UTC().Truncate(time.Microsecond)
			sv.Rating, sv.Status, sv.RespondedAt = &rating, db.StatusCompleted, &now
			sv.LastClicks = []time.Time{now, now, now, now, now}
			return db.StoreAnswer(ctx, tx, sv, from)
		})
		return pid, err
	}
	first, err := answer(db.StatusPending)
	if !errors.Is(err, db.ErrLockedRowChanged) {
		t.Fatalf("answer expecting the wrong status: %v, want ErrLockedRowChanged", err)
	}
	pid, err := answer(db.StatusSent)
	if err != nil {
		t.Fatal(err)
	}
	if pid != first {
		t.Error("the connection was replaced after the rolled-back transaction (its statements lost?)")
	}
	if q := lastMessage(t, f, pid); !strings.Contains(q, "EXECUTE csat_answer_update(") || !strings.HasSuffix(q, "COMMIT") {
		t.Errorf("the answer's update did not ride with the COMMIT: %q", q)
	}
	got, err := db.GetSurvey(f.ctxA, f.app, f.A, f.SurveyA.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != db.StatusCompleted || got.Rating == nil || *got.Rating != 2 || len(got.LastClicks) != 5 {
		t.Fatalf("stored: status %s rating %v clicks %v", got.Status, got.Rating, got.LastClicks)
	}
	var names []string
	if err := one.NewRaw("SELECT name FROM pg_prepared_statements ORDER BY name").Scan(context.Background(), &names); err != nil {
		t.Fatal(err)
	}
	if want := []string{"csat_answer_update", "csat_token_lock"}; !reflect.DeepEqual(names, want) {
		t.Errorf("prepared %v, want %v once each", names, want)
	}
}

// TestPagePreparedMatchesText: the unfiltered keyset page (prepared, one
// statement per shape) reads exactly what the same page read as text
// reads (a filter keeping every survey takes the text path), for every
// sort and direction, walking the whole list forwards and backwards with
// cursors (ties and NULL sort keys included).
func TestPagePreparedMatchesText(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	tenantID := seedScanSurveys(t, admin, 23)
	one, err := db.Open(db.AppDSN(dsn), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	ctx := db.WithTenant(context.Background(), tenantID)
	page := func(f db.SurveyFilter, k db.Keyset) []db.Survey {
		t.Helper()
		rows, _, err := db.PageSurveys(ctx, one, tenantID, f, k)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	for _, sort := range []string{db.SortCreated, db.SortSent, db.SortResponded, db.SortRating} {
		for _, desc := range []bool{true, false} {
			for _, fromEnd := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s-desc-%v-from-end-%v", sort, desc, fromEnd), func(t *testing.T) {
					k := db.Keyset{Sort: sort, Desc: desc, Limit: 5, FromEnd: fromEnd, Columns: []string{"status", "rating"}}
					seen := 0
					for range 10 {
						got := page(db.SurveyFilter{}, k)
						want := page(db.SurveyFilter{Statuses: allStatuses}, k)
						if !reflect.DeepEqual(got, want) {
							t.Fatalf("after %d rows: prepared page\n%+v\ntext\n%+v", seen, got, want)
						}
						seen += len(got)
						if len(got) < k.Limit {
							break
						}
						edge := got[len(got)-1]
						if fromEnd {
							edge = got[0]
						}
						pos := &db.KeyPos{Value: db.KeyValue(sort, &edge), ID: edge.ID}
						if fromEnd {
							k.Before = pos
						} else {
							k.After = pos
						}
					}
					if seen != 23 {
						t.Errorf("walked %d surveys, want 23", seen)
					}
				})
			}
		}
	}
	var n int
	if err := one.NewRaw("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'csat_page_%'").Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	if n < 16 { // at least each sort, direction and side's first page
		t.Errorf("%d page statements prepared", n)
	}
}

// TestKeyPreparedAfterMigration: a migration that adds a column to surveys
// under a running process leaves its connections' prepared "SELECT s.*"
// unable to answer (0A000). The transaction that meets it fails before
// committing anything and RetryTx runs it again on a new connection, which
// prepares afresh; the stale connection is closed, not reused.
func TestKeyPreparedAfterMigration(t *testing.T) {
	f := seedTwoTenants(t) // A's survey is sent, its token "a"
	one, err := db.Open(db.AppDSN(f.dsn), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	attempts := 0
	read := func() (pid int, err error) {
		err = db.RetryTx(f.ctxA, func() error {
			attempts++
			return one.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := db.GetSurveyByToken(ctx, tx, f.A, secret.Hash("a"), true); err != nil {
					return err
				}
				return tx.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &pid)
			})
		})
		return pid, err
	}
	before, err := read()
	if err != nil || attempts != 1 {
		t.Fatalf("first read: %v after %d attempts", err, attempts)
	}
	if _, err := f.admin.ExecContext(context.Background(), "ALTER TABLE surveys ADD COLUMN added_by_a_migration int"); err != nil {
		t.Fatal(err)
	}
	attempts = 0
	after, err := read()
	if err != nil {
		t.Fatalf("read after the migration: %v", err)
	}
	if attempts != 2 || after == before {
		t.Errorf("read after the migration: %d attempts, backend %d then %d; want 2 attempts on a new connection", attempts, before, after)
	}
}

// TestKeyPreparedAfterMigrationEveryConnection: after a migration every
// pooled connection holds the stale statement. The first transaction to
// meet it is run again, and the connection it then takes, stale too, starts
// afresh instead of failing the retry.
func TestKeyPreparedAfterMigrationEveryConnection(t *testing.T) {
	f := seedTwoTenants(t)
	const conns = 3
	pool, err := db.Open(db.AppDSN(f.dsn), conns)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	state := func(ctx context.Context, tx bun.Tx) error {
		_, err := db.GetIntakeState(ctx, tx, f.A, "conv-new", "x@example.com")
		return err
	}
	// Each connection prepares the intake's read: three transactions at once.
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	errs := make([]error, conns)
	for i := range conns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			errs[i] = pool.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				err := state(ctx, tx)
				ready.Done()
				<-release
				return err
			})
		}()
	}
	ready.Wait()
	close(release)
	done.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.admin.ExecContext(context.Background(), "ALTER TABLE csat_configs ADD COLUMN added_by_a_migration int"); err != nil {
		t.Fatal(err)
	}
	for round := range 4 {
		attempts := 0
		err := db.RetryTx(f.ctxA, func() error {
			attempts++
			return pool.RunInTx(f.ctxA, nil, state)
		})
		if err != nil {
			t.Fatalf("read %d after the migration: %v after %d attempts", round, err, attempts)
		}
		if round > 0 && attempts != 1 {
			t.Errorf("read %d after the migration took %d attempts, want 1", round, attempts)
		}
	}
}

// TestStatsPreparedMatchesText: outside a transaction the rollups'
// statement is prepared per shape (statsStatement); it answers what the
// same statement as text answers (inside a transaction), and what a recount
// of the surveys answers, for totals, trends by day and by hour,
// breakdowns, a filter, a range reading whole months, and unions of them,
// before and after a fold.
func TestStatsPreparedMatchesText(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	tenantID := newTenant(t, admin, "Prepared stats")
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 300 {
		sent := base.Add(time.Duration(i*29) * time.Hour)
		var rating any
		if i%3 > 0 {
			rating = 1 + i%5
		}
		_, err := admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for, sent_at, rating, agent_id, team_id, channel)
			VALUES (?, ?, ?, 'p@example.com', 'sent', ?, ?, ?, ?, ?, ?, 'chat')`,
			tenantID, fmt.Sprintf("csat_p%05d", i), fmt.Sprint(i), sent, sent, sent, rating, fmt.Sprintf("agent-%d", i%4), fmt.Sprintf("team-%d", i%3)).Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	one, err := db.Open(db.AppDSN(dsn), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	bound := db.WithTenant(ctx, tenantID)
	day := func(m time.Month, d int) time.Time { return time.Date(2025, m, d, 0, 0, 0, 0, time.UTC) }
	weeks := func(from time.Time, n int) []time.Time {
		var b []time.Time
		for i := range n + 1 {
			b = append(b, from.AddDate(0, 0, 7*i))
		}
		return b
	}
	var hours []time.Time
	for i := range 49 {
		hours = append(hours, day(4, 2).Add(time.Duration(i)*time.Hour))
	}
	year := []time.Time{day(3, 2), day(3, 2).AddDate(1, 0, 0)}
	cases := map[string][]db.StatsQuery{
		"totals":                {{Bounds: year}},
		"weekly trend":          {{Bounds: weeks(day(3, 3), 52)}},
		"hourly trend":          {{Bounds: hours}},
		"breakdown":             {{Bounds: year, GroupBy: db.DimAgent}},
		"one agent":             {{Bounds: year, AgentID: "agent-2"}},
		"one agent's trend":     {{Bounds: weeks(day(3, 3), 20), AgentID: "agent-1"}},
		"inside one month":      {{Bounds: []time.Time{day(5, 3), day(5, 20)}, GroupBy: db.DimChannel}},
		"totals, trend, agents": {{Bounds: year}, {Bounds: weeks(day(3, 3), 52)}, {Bounds: year, GroupBy: db.DimAgent}},
		"trend and teams":       {{Bounds: weeks(day(3, 3), 52)}, {Bounds: year, GroupBy: db.DimTeam}},
	}
	check := func(stage string) {
		t.Helper()
		for name, qs := range cases {
			got, err := db.SurveyStatsEach(bound, one, tenantID, qs...)
			if err != nil {
				t.Fatalf("%s %s: %v", stage, name, err)
			}
			var want [][]db.StatRow
			err = one.RunInTx(bound, nil, func(ctx context.Context, tx bun.Tx) error {
				want, err = db.SurveyStatsEach(ctx, tx, tenantID, qs...)
				return err
			})
			if err != nil {
				t.Fatalf("%s %s as text: %v", stage, name, err)
			}
			if len(want[0]) == 0 {
				t.Fatalf("%s %s: no rows to compare", stage, name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: prepared\n%+v\ntext\n%+v", stage, name, got, want)
			}
			for i, q := range qs {
				if recount := recountStats(t, admin, tenantID, q); !reflect.DeepEqual(sortStats(got[i]), recount) {
					t.Errorf("%s %s, query %d: rollups\n%+v\nrecount\n%+v", stage, name, i, sortStats(got[i]), recount)
				}
			}
		}
	}
	check("unfolded")
	if _, err := db.FoldStats(bound, one, tenantID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.NewRaw("UPDATE surveys SET rating = 5, status = 'completed' WHERE tenant_id = ? AND rating IS NULL AND id < 'csat_p00100'", tenantID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	check("folded, then rated")
	// Each case is a shape of its own (the grain and the months pick the
	// tables, a key adds a condition), and so is the union below; values
	// are parameters, so the hourly trend over other hours shares its
	// statement.
	if _, err := db.SurveyStatsEach(bound, one, tenantID, db.StatsQuery{Bounds: weeks(day(4, 7), 30), AgentID: "agent-3"},
		db.StatsQuery{Bounds: []time.Time{day(4, 7), day(12, 7)}, GroupBy: db.DimAgent}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SurveyStatsEach(bound, one, tenantID, db.StatsQuery{Bounds: hours[3:20]}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := one.NewRaw("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'csat_stats_%'").Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if n != len(cases)+1 {
		t.Errorf("%d stats statements prepared, want one per shape (%d)", n, len(cases)+1)
	}
}

// recountStats answers q from the surveys themselves: each sent survey in
// its bucket (by its edges), under its key when q groups.
func recountStats(t *testing.T, admin *bun.DB, tenantID string, q db.StatsQuery) []db.StatRow {
	t.Helper()
	var rows []struct {
		SentAt                   time.Time
		Rating                   *int
		AgentID, TeamID, Channel string
	}
	if err := admin.NewRaw(`SELECT sent_at, rating, coalesce(agent_id, '') AS agent_id, coalesce(team_id, '') AS team_id, coalesce(channel, '') AS channel
		FROM surveys WHERE tenant_id = ? AND sent_at IS NOT NULL`, tenantID).Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	byKey := map[[2]any]*db.StatRow{}
	for _, r := range rows {
		if (q.AgentID != "" && r.AgentID != q.AgentID) || (q.TeamID != "" && r.TeamID != q.TeamID) || (q.Channel != "" && r.Channel != q.Channel) {
			continue
		}
		bucket := 0
		for i := 1; i < len(q.Bounds); i++ {
			if !r.SentAt.Before(q.Bounds[i-1]) && r.SentAt.Before(q.Bounds[i]) {
				bucket = i
			}
		}
		if bucket == 0 {
			continue
		}
		key := map[string]string{"": "", db.DimAgent: r.AgentID, db.DimTeam: r.TeamID, db.DimChannel: r.Channel}[q.GroupBy]
		switch {
		case q.AgentID != "":
			key = q.AgentID
		case q.TeamID != "":
			key = q.TeamID
		case q.Channel != "":
			key = q.Channel
		}
		row := byKey[[2]any{bucket, key}]
		if row == nil {
			row = &db.StatRow{Bucket: bucket, Key: key}
			byKey[[2]any{bucket, key}] = row
		}
		row.Sent++
		if r.Rating != nil {
			row.Ratings[*r.Rating-1]++
		}
	}
	var out []db.StatRow
	for _, r := range byKey {
		out = append(out, *r)
	}
	return sortStats(out)
}

func sortStats(rows []db.StatRow) []db.StatRow {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b db.StatRow) int {
		if a.Bucket != b.Bucket {
			return a.Bucket - b.Bucket
		}
		return strings.Compare(a.Key, b.Key)
	})
	return rows
}
