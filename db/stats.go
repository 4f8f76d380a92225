package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// Analytics dimensions, as stored in survey_stats_hourly.dim.
const (
	DimAgent   = "agent"
	DimTeam    = "team"
	DimChannel = "channel"
)

// StatsQuery asks for survey counts in consecutive time buckets.
type StatsQuery struct {
	// Bounds are the bucket edges: bucket i (1-based) holds the surveys
	// sent in [Bounds[i-1], Bounds[i]). At least two, ascending.
	Bounds  []time.Time
	AgentID string // filters; "" does not filter
	TeamID  string
	Channel string
	GroupBy string // "", DimAgent, DimTeam or DimChannel
}

// StatRow counts the surveys of one bucket (and one key when grouped).
type StatRow struct {
	Bucket  int
	Key     string // "" when not grouped, or for surveys without the attribute
	Sent    int
	Ratings [5]int // surveys rated 1 to 5
}

// dims lists the dimensions q touches: its filters and its grouping.
func (q StatsQuery) dims() map[string]string {
	d := map[string]string{}
	for dim, v := range map[string]string{DimAgent: q.AgentID, DimTeam: q.TeamID, DimChannel: q.Channel} {
		if v != "" {
			d[dim] = v
		}
	}
	if q.GroupBy != "" {
		if _, ok := d[q.GroupBy]; !ok {
			d[q.GroupBy] = ""
		}
	}
	return d
}

// UsesRollup reports whether the hourly rollup can answer q: every bucket
// edge is a whole UTC hour (true for every timezone with whole-hour
// offsets) and q touches at most one dimension. Otherwise the raw surveys
// answer, through the (tenant_id, sent_at) index.
func (q StatsQuery) UsesRollup() bool {
	for _, b := range q.Bounds {
		if !b.Equal(b.Truncate(time.Hour)) {
			return false
		}
	}
	return len(q.dims()) <= 1
}

// SurveyStats counts the tenant's sent surveys and their ratings per bucket
// (and per key of q.GroupBy). Buckets and keys without surveys are absent.
func SurveyStats(ctx context.Context, idb bun.IDB, tenantID string, q StatsQuery) ([]StatRow, error) {
	out, err := SurveyStatsEach(ctx, idb, tenantID, q)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// SurveyStatsEach answers several stats queries, as SurveyStats answers
// each, in one statement: out[i] answers qs[i]. One round trip, one tenant
// binding and one snapshot for all (GraphQL's totals with a trend and a
// breakdown), instead of a statement each.
func SurveyStatsEach(ctx context.Context, idb bun.IDB, tenantID string, qs ...StatsQuery) ([][]StatRow, error) {
	if len(qs) == 0 {
		return nil, fmt.Errorf("survey stats: no query")
	}
	for _, q := range qs {
		if len(q.Bounds) < 2 {
			return nil, fmt.Errorf("survey stats: need at least two bucket bounds")
		}
	}
	var (
		rows *sql.Rows
		err  error
	)
	if p, args := statsStatement(idb, tenantID, qs); p != nil {
		rows, err = p.query(ctx, idb, args...)
	} else {
		rows, err = statsUnion(idb, tenantID, qs, literal).Rows(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("survey stats: %w", err)
	}
	out, err := scanStats(rows, len(qs))
	if err != nil {
		return nil, fmt.Errorf("survey stats: %w", err)
	}
	return out, nil
}

// Planning the rollups' statement cost Postgres more than running it: a
// GraphQL analytics request's union of totals, a year's weekly trend and an
// agent breakdown was parsed, analysed and planned at every request (about
// a quarter of Postgres's time in make bench's scenario), where its plan is
// always the same: the rollups' rows in range and the unfolded deltas
// (statRows), aggregated. So outside
// transactions the statement is prepared per shape, as the keyset page is
// (pageStatement); reads of the raw surveys stay text, their plans depend
// on the range.
var statsShapes = shapes{prefix: "csat_stats", max: maxShapes}

// statsStatement returns the prepared statement answering qs and its
// arguments, or nil when qs read raw surveys, idb is a transaction, or the
// shapes are all taken.
func statsStatement(idb bun.IDB, tenantID string, qs []StatsQuery) (*preparedQuery, []any) {
	if _, inTx := idb.(bun.Tx); inTx {
		return nil, nil
	}
	for _, q := range qs {
		if !q.UsesRollup() {
			return nil, nil
		}
	}
	var ps params
	body := statsUnion(idb, tenantID, qs, func(v any, typ string) any { return ps.add(v, typ) }).String()
	p := statsShapes.statement(body, ps.types)
	if p == nil {
		return nil, nil
	}
	return p, ps.args
}

// bind puts a value of the given Postgres type into a statement: the value
// itself (literal, formatted by Bun) or a parameter's placeholder (params).
type bind func(v any, typ string) any

func literal(v any, _ string) any { return v }

// statsUnion is the statement that answers qs: out[i] answers qs[i].
func statsUnion(idb bun.IDB, tenantID string, qs []StatsQuery, arg bind) *bun.SelectQuery {
	if len(qs) == 1 {
		return statsQuery(idb, tenantID, qs[0], arg)
	}
	var sq *bun.SelectQuery
	for i, q := range qs {
		// UNION ALL matches columns by position, which differ between
		// the rollup's and the raw surveys' statements: name them, and
		// which query each row answers.
		one := idb.NewSelect().TableExpr("(?) AS p", statsQuery(idb, tenantID, q, arg)).
			ColumnExpr("? AS part, p.bucket, p.key, p.sent, p.r1, p.r2, p.r3, p.r4, p.r5", i)
		if sq == nil {
			sq = one
		} else {
			sq = sq.UnionAll(one)
		}
	}
	return sq
}

// statsQuery is the statement that answers q alone.
func statsQuery(idb bun.IDB, tenantID string, q StatsQuery, arg bind) *bun.SelectQuery {
	bounds := make([]time.Time, len(q.Bounds))
	for i, b := range q.Bounds {
		bounds[i] = b.UTC()
	}
	if q.UsesRollup() {
		return rollupStats(idb, tenantID, q, bounds, arg)
	}
	return rawStats(idb, tenantID, q, bounds)
}

// scanStats reads stats rows by column name, by hand: Bun's reflection
// (a scanner per field, the slice grown by reflect) was about 3 % of a
// GraphQL analytics request's CPU for a year's weekly trend and agent
// breakdown (~120 rows), with 120 allocations more. A "part" column
// says which of the statement's n queries a row answers (out[part]);
// without one, every row answers the only one.
func scanStats(rows *sql.Rows, n int) ([][]StatRow, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	// Each column's field, found once: keyCol is the key's column (-1:
	// none), partCol the part's, counts[i] picks the count field of
	// column i.
	keyCol, partCol := -1, -1
	counts := make([]func(*StatRow) *int, len(cols))
	for i, c := range cols {
		switch c {
		case "key":
			keyCol = i
		case "part":
			partCol = i
		case "bucket":
			counts[i] = func(r *StatRow) *int { return &r.Bucket }
		case "sent":
			counts[i] = func(r *StatRow) *int { return &r.Sent }
		case "r1", "r2", "r3", "r4", "r5":
			k := c[1] - '1'
			counts[i] = func(r *StatRow) *int { return &r.Ratings[k] }
		default:
			return nil, fmt.Errorf("unexpected column %q", c)
		}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := make([][]StatRow, n)
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var r StatRow
		part := 0
		for i, v := range vals {
			switch {
			case i == keyCol:
				s, ok := v.(string)
				if !ok && v != nil {
					return nil, fmt.Errorf("key: cannot scan %T", v)
				}
				r.Key = s
			case v == nil: // a sum over no rows
			case i == partCol:
				p, err := asInt(v)
				if err != nil || p < 0 || p >= int64(n) {
					return nil, fmt.Errorf("part: %v not one of %d queries", v, n)
				}
				part = int(p)
			default:
				c, err := asInt(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", cols[i], err)
				}
				*counts[i](&r) = int(c)
			}
		}
		out[part] = append(out[part], r)
	}
	return out, rows.Err()
}

func rollupStats(idb bun.IDB, tenantID string, q StatsQuery, bounds []time.Time, arg bind) *bun.SelectQuery {
	dim, key := "all", ""
	for d, v := range q.dims() {
		dim, key = d, v
	}
	start, end := bounds[0], bounds[len(bounds)-1]
	// Bounds on whole UTC days read the daily rollup (24x fewer rows); one
	// bucket spanning whole UTC months reads months and the days between
	// each end and its month start (monthsFor: a year by agent, 840 rows
	// instead of ~20,000); and the deltas not folded yet (statRows, in one
	// snapshot: a fold moves rows from the deltas to the rollups
	// atomically).
	grain := "hour"
	if wholeUTCDays(bounds) {
		grain = "day"
	}
	r := statRows{tenantID: tenantID, dim: dim, key: key, grain: grain, start: start, end: end, arg: arg}
	from, to, months := monthsFor(start, end)
	months = months && len(bounds) == 2
	if months {
		r.m0, r.m1 = &from, &to
	}
	sq := idb.NewSelect().TableExpr("(?) AS h", r.query()).
		ColumnExpr("sum(h.sent) AS sent, sum(h.r1) AS r1, sum(h.r2) AS r2, sum(h.r3) AS r3, sum(h.r4) AS r4, sum(h.r5) AS r5")
	if len(bounds) == 2 {
		// One bucket (totals, breakdowns): every row in range is in it, so
		// nothing to bucket and one grouping key less.
		sq = sq.ColumnExpr("1 AS bucket")
	} else {
		// Edges are whole hours (days): bucketing a delta's sent_at is
		// bucketing its hour (day).
		sq = sq.ColumnExpr("width_bucket(h.at, ?::timestamptz[]) AS bucket", arg(pgdialect.Array(bounds), "timestamptz[]")).GroupExpr("bucket")
	}
	if q.GroupBy != "" && key == "" {
		sq = sq.ColumnExpr("h.dim_key AS key").GroupExpr("h.dim_key")
		if months {
			sq = sq.Having(netZeroOut)
		}
		return sq
	}
	// Without a GROUP BY an empty range still gives a row: keep it absent.
	having := "count(*) > 0"
	if months {
		having = netZeroOut
	}
	return sq.ColumnExpr("?::text AS key", arg(key, "text")).Having(having)
}

// statRows are one dimension's rollup rows (only key's, unless "") counting
// the surveys sent in [start, end), and the deltas not folded yet, in one
// snapshot (a fold moves rows from the deltas to the rollups atomically):
// the hourly rollup's when grain is "hour", else the daily one's, or, with
// months, the monthly rollup's for [m0, m1) and the daily rows between each
// end and its month start, added (a month start inside the range) or taken
// off (outside; those rows carry negated counts and their own day as "at",
// which lies outside the range: months are read for a single bucket only,
// which ignores "at").
//
// This is what the function survey_stats_rows (migration
// 20260114000001_stats_month_edges) answers, written into the statement:
// the function kept its statements' plans per connection, when the
// statement calling it was planned at every request; now that statement is
// prepared (statsStatement) and its plan holds the reads themselves, not a
// function scan that ran each read through SPI and stored its rows for the
// aggregate (pgbench, prepared, 100,000 surveys: a year by agent 5,200–5,600
// → 8,100 statements/s, a year's weekly trend 10,700 → 13,800). The
// function stays for a previous release during a rolling deploy.
type statRows struct {
	tenantID, dim, key, grain string
	start, end                time.Time
	m0, m1                    *time.Time // nil: no months read
	arg                       bind
}

// query is the rows' statement: columns at, dim_key, sent, r1 ... r5.
func (r statRows) query() schema.QueryWithArgs {
	var b strings.Builder
	var args []any
	tenant, dim := r.arg(r.tenantID, "text"), r.arg(r.dim, "text")
	var key any // the key's parameter, when there is a key
	if r.key != "" {
		key = r.arg(r.key, "text")
	}
	// part reads a rollup table's rows whose column at lies in [lo, hi),
	// their counts multiplied by sign (nil: as they are).
	part := func(table, at string, lo, hi time.Time, sign any) {
		if b.Len() > 0 {
			b.WriteString(" UNION ALL ")
		}
		counts := "r.sent AS sent, r.r1 AS r1, r.r2 AS r2, r.r3 AS r3, r.r4 AS r4, r.r5 AS r5"
		if sign != nil {
			counts = "?::int * r.sent, ?::int * r.r1, ?::int * r.r2, ?::int * r.r3, ?::int * r.r4, ?::int * r.r5"
			s := r.arg(sign, "int")
			args = append(args, s, s, s, s, s, s)
		}
		fmt.Fprintf(&b, "SELECT r.%s AS at, r.dim_key, %s FROM %s AS r WHERE r.tenant_id = ? AND r.dim = ?", at, counts, table)
		args = append(args, tenant, dim)
		if r.key != "" {
			b.WriteString(" AND r.dim_key = ?")
			args = append(args, key)
		}
		fmt.Fprintf(&b, " AND r.%s >= ? AND r.%s < ?", at, at)
		args = append(args, r.arg(lo, "timestamptz"), r.arg(hi, "timestamptz"))
	}
	switch {
	case r.grain == "hour":
		part("survey_stats_hourly", "hour", r.start, r.end, nil)
	case r.m0 == nil:
		part("survey_stats_daily", "day", r.start, r.end, nil)
	default:
		part("survey_stats_monthly", "month", *r.m0, *r.m1, nil)
		edge := func(at, m time.Time, inside bool) {
			sign := -1
			if inside {
				sign = 1
			}
			part("survey_stats_daily", "day", minTime(at, m), maxTime(at, m), sign)
		}
		edge(r.start, *r.m0, !r.m0.Before(r.start))
		edge(r.end, *r.m1, !r.m1.After(r.end))
	}
	b.WriteString(` UNION ALL SELECT d.sent_at, d.dim_key, d.sign,
		CASE WHEN d.rating = 1 THEN d.sign ELSE 0 END, CASE WHEN d.rating = 2 THEN d.sign ELSE 0 END,
		CASE WHEN d.rating = 3 THEN d.sign ELSE 0 END, CASE WHEN d.rating = 4 THEN d.sign ELSE 0 END,
		CASE WHEN d.rating = 5 THEN d.sign ELSE 0 END
	FROM (SELECT d.sent_at, d.sign::int AS sign, d.rating,
		CASE ? WHEN 'agent' THEN d.agent_id WHEN 'team' THEN d.team_id WHEN 'channel' THEN d.channel ELSE '' END AS dim_key
		FROM (` + unfoldedDeltas("?") + `) AS d WHERE d.sent_at >= ? AND d.sent_at < ?) AS d`)
	args = append(args, dim, tenant, tenant, tenant, r.arg(r.start, "timestamptz"), r.arg(r.end, "timestamptz"))
	if r.key != "" {
		b.WriteString(" WHERE d.dim_key = ?")
		args = append(args, key)
	}
	return schema.SafeQuery(b.String(), args)
}

// unfoldedDeltas is the statement of the tenant's deltas that its last fold
// did not see (the fold's snapshot, its watermark; all of them before a
// first fold), every column of survey_stat_deltas: what the function
// survey_stat_unfolded answers, written into the statements that read it
// (for the reason statRows gives). tenant is the tenant's placeholder, used
// three times: "$1", or "?" with the tenant given three times.
//
// The lowest transaction id the watermark leaves unseen must bound the
// primary key's range, (tenant_id, xid): folded deltas are deleted, and a
// busy tenant's dead ones, until vacuumed, are tens of thousands of index
// entries (53,400 after a minute of writes in make bench: 7 ms to walk,
// where the range takes 0.05 ms). Postgres uses a scalar subquery's value
// as a bound, but not a coalesce of one, so the coalesce is inside it
// (TestUnfoldedDeltasBoundByWatermark).
func unfoldedDeltas(tenant string) string {
	return `SELECT d.* FROM survey_stat_deltas AS d WHERE d.tenant_id = ` + tenant + `
		AND d.xid >= (SELECT coalesce((SELECT pg_snapshot_xmin(f.snap) FROM survey_stat_folds AS f WHERE f.tenant_id = ` + tenant + `), '0'::xid8))
		AND coalesce(NOT pg_visible_in_snapshot(d.xid, (SELECT f.snap FROM survey_stat_folds AS f WHERE f.tenant_id = ` + tenant + `)), true)`
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// netZeroOut drops a key (or the total) whose rows sum to no survey: days
// taken off a month can leave one at zero, where the surveys themselves
// would give no row.
const netZeroOut = "sum(h.sent) <> 0"

// FoldStats adds the tenant's deltas not folded yet to the rollups
// (survey_stats_fold) and returns how many it added: 0 when none were new,
// or when another folder holds the tenant. It must run in READ COMMITTED.
func FoldStats(ctx context.Context, idb bun.IDB, tenantID string) (int, error) {
	var n int
	if err := idb.NewRaw("SELECT survey_stats_fold(?)", tenantID).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("fold stats: %w", mapErr(err))
	}
	return n, nil
}

// monthsFor returns the month starts [m0, m1) that a single bucket
// [start, end) on whole UTC days reads from the monthly rollup: at each
// end, the month start nearer in days, whose days up to the end statRows
// adds (a month start inside the range) or takes off (one outside). ok is
// false when fewer than two whole months lie inside the range: the daily
// rows are few anyway, and the extra range reads would cost more than they
// save.
func monthsFor(start, end time.Time) (m0, m1 time.Time, ok bool) {
	if !wholeUTCDays([]time.Time{start, end}) {
		return m0, m1, false
	}
	start, end = start.UTC(), end.UTC()
	in0, in1 := monthAtOrAfter(start), monthAtOrBefore(end)
	if !in1.After(in0.AddDate(0, 1, 0)) {
		return m0, m1, false
	}
	return nearer(start, monthAtOrBefore(start), in0), nearer(end, monthAtOrAfter(end), in1), true
}

func monthAtOrBefore(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func monthAtOrAfter(t time.Time) time.Time {
	m := monthAtOrBefore(t)
	if m.Before(t) {
		m = m.AddDate(0, 1, 0)
	}
	return m
}

// nearer returns whichever of a and b is nearer t; b on a tie (callers
// pass the month start inside the range as b: its days are added).
func nearer(t, a, b time.Time) time.Time {
	if t.Sub(a).Abs() < t.Sub(b).Abs() {
		return a
	}
	return b
}

// wholeUTCDays reports whether every bound is a UTC midnight.
func wholeUTCDays(bounds []time.Time) bool {
	for _, b := range bounds {
		if b = b.UTC(); !b.Equal(time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)) {
			return false
		}
	}
	return true
}

var dimColumn = map[string]string{DimAgent: "s.agent_id", DimTeam: "s.team_id", DimChannel: "s.channel"}

func rawStats(idb bun.IDB, tenantID string, q StatsQuery, bounds []time.Time) *bun.SelectQuery {
	sq := idb.NewSelect().TableExpr("surveys AS s").
		ColumnExpr("width_bucket(s.sent_at, ?::timestamptz[]) AS bucket", pgdialect.Array(bounds)).
		ColumnExpr("count(*) AS sent").
		ColumnExpr("count(*) FILTER (WHERE s.rating = 1) AS r1, count(*) FILTER (WHERE s.rating = 2) AS r2").
		ColumnExpr("count(*) FILTER (WHERE s.rating = 3) AS r3, count(*) FILTER (WHERE s.rating = 4) AS r4").
		ColumnExpr("count(*) FILTER (WHERE s.rating = 5) AS r5").
		Where("s.tenant_id = ?", tenantID).
		Where("s.sent_at >= ? AND s.sent_at < ?", bounds[0], bounds[len(bounds)-1]).
		GroupExpr("bucket")
	if q.AgentID != "" {
		sq = sq.Where("s.agent_id = ?", q.AgentID)
	}
	if q.TeamID != "" {
		sq = sq.Where("s.team_id = ?", q.TeamID)
	}
	if q.Channel != "" {
		sq = sq.Where("s.channel = ?", q.Channel)
	}
	if col, ok := dimColumn[q.GroupBy]; ok {
		sq = sq.ColumnExpr("coalesce(?, '') AS key", bun.Safe(col)).GroupExpr("key")
	} else {
		sq = sq.ColumnExpr("'' AS key")
	}
	return sq
}
