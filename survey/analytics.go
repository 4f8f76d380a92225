package survey

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/tenants"
)

// Analytics limits and defaults.
const (
	DateLayout       = "2006-01-02"
	MaxAnalyticsDays = 366 // days in a range, both ends included
	DefaultDays      = 30  // the default range: the last 30 days ending today
)

// AnalyticsFilter narrows analytics to one agent, team and/or channel;
// empty fields do not filter.
type AnalyticsFilter struct {
	AgentID string
	TeamID  string
	Channel string
}

// AnalyticsQuery asks for the analytics of a date range. Dates are
// YYYY-MM-DD days in Timezone (an IANA name, "" for UTC), both included.
// An empty EndDate is today; an empty StartDate is 29 days before the end.
type AnalyticsQuery struct {
	StartDate string
	EndDate   string
	Timezone  string
	Filter    AnalyticsFilter
}

// Granularity is the size of a trend bucket.
type Granularity string

const (
	Day   Granularity = "DAY"
	Week  Granularity = "WEEK" // ISO weeks, Monday to Sunday
	Month Granularity = "MONTH"
)

// Dimension is what a breakdown groups by.
type Dimension string

const (
	ByAgent   Dimension = "AGENT"
	ByTeam    Dimension = "TEAM"
	ByChannel Dimension = "CHANNEL"
)

var dimColumns = map[Dimension]string{ByAgent: db.DimAgent, ByTeam: db.DimTeam, ByChannel: db.DimChannel}

// Period is the normalized range of an analytics answer.
type Period struct {
	Start    string // YYYY-MM-DD
	End      string // YYYY-MM-DD, included
	Timezone string // IANA name; "UTC" by default
}

// Counts are the numbers behind every analytics figure.
type Counts struct {
	Sent         int
	Distribution [5]int // responses per rating, index rating-1
}

// Responses is how many of the sent surveys hold a rating.
func (c Counts) Responses() int {
	n := 0
	for _, v := range c.Distribution {
		n += v
	}
	return n
}

// ResponseRate is responses / sent × 100, rounded to one decimal; 0 when
// nothing was sent.
func (c Counts) ResponseRate() float64 { return ratio(int64(c.Responses())*100, int64(c.Sent)) }

// AverageRating is the mean rating of the responses rounded to one
// decimal; nil when there are none.
func (c Counts) AverageRating() *float64 {
	n := c.Responses()
	if n == 0 {
		return nil
	}
	var sum int64
	for i, v := range c.Distribution {
		sum += int64(i+1) * int64(v)
	}
	avg := ratio(sum, int64(n))
	return &avg
}

// SatisfactionScore is the share of 4 and 5 ratings among the responses,
// in percent, rounded to one decimal; 0 when there are none.
func (c Counts) SatisfactionScore() float64 {
	return ratio(int64(c.Distribution[3]+c.Distribution[4])*100, int64(c.Responses()))
}

// addCounts adds another bucket's counts to c.
func (c *Counts) addCounts(o Counts) {
	c.Sent += o.Sent
	for i, v := range o.Distribution {
		c.Distribution[i] += v
	}
}

func (c *Counts) add(r db.StatRow) {
	c.Sent += r.Sent
	for i, v := range r.Ratings {
		c.Distribution[i] += v
	}
}

// ratio is num/den rounded half away from zero to one decimal, computed in
// integers so 4.25 is 4.3 and never 4.2 through a float error; 0 for den 0.
func ratio(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	tenths := (num*20 + den) / (2 * den) // round(num*10/den) for num >= 0
	return float64(tenths) / 10
}

// Analytics is the answer for one period: the documented REST figures.
type Analytics struct {
	Query  AnalyticsQuery // normalized: explicit dates and timezone
	Period Period
	Counts
}

// TrendPoint is one bucket of a trend.
type TrendPoint struct {
	Date string // first day of the bucket inside the period, YYYY-MM-DD
	Counts
}

// BreakdownRow is the counts of one agent, team or channel.
type BreakdownRow struct {
	Key string // "" for the surveys without that attribute
	Counts
}

// analyticsRange is a validated query: days in loc, as UTC instants.
type analyticsRange struct {
	q          AnalyticsQuery
	loc        *time.Location
	start, end time.Time // midnights in loc of the first and the last day
}

// from and to are the instants the range covers: [from, to).
func (r analyticsRange) from() time.Time { return r.start }
func (r analyticsRange) to() time.Time   { return r.end.AddDate(0, 0, 1) }

func (r analyticsRange) period() Period {
	return Period{Start: r.start.Format(DateLayout), End: r.end.Format(DateLayout), Timezone: r.loc.String()}
}

// ParseDate parses a YYYY-MM-DD date strictly (no time, no other layout).
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	if len(s) != len(DateLayout) {
		return time.Time{}, errs.New(errs.Invalid, "dates must look like 2026-03-01")
	}
	t, err := time.ParseInLocation(DateLayout, s, loc)
	if err != nil {
		return time.Time{}, errs.New(errs.Invalid, "dates must look like 2026-03-01")
	}
	return t, nil
}

// LoadTimezone resolves an IANA timezone name; "" is UTC. Local and
// abbreviations that are not IANA zone names are refused.
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" || strings.ContainsAny(name, " \\") || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, errs.New(errs.Invalid, "timezone must be an IANA name like Europe/Berlin")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errs.New(errs.Invalid, "timezone must be an IANA name like Europe/Berlin")
	}
	return loc, nil
}

// Normalize validates q and fills in its defaults as of now: the dates are
// days in the timezone, start not after end, at most MaxAnalyticsDays days.
func (q AnalyticsQuery) Normalize(now time.Time) (AnalyticsQuery, error) {
	r, err := q.resolve(now)
	if err != nil {
		return AnalyticsQuery{}, err
	}
	return r.q, nil
}

func (q AnalyticsQuery) resolve(now time.Time) (analyticsRange, error) {
	loc, err := LoadTimezone(strings.TrimSpace(q.Timezone))
	if err != nil {
		return analyticsRange{}, &errs.Error{Code: errs.Invalid, Message: "timezone must be an IANA name like Europe/Berlin",
			Fields: map[string]string{"timezone": "unknown timezone"}}
	}
	bad := func(field, msg string) error {
		return &errs.Error{Code: errs.Invalid, Message: field + ": " + msg, Fields: map[string]string{field: msg}}
	}
	var start, end time.Time
	if q.EndDate == "" {
		n := now.In(loc)
		end = time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
	} else if end, err = ParseDate(q.EndDate, loc); err != nil {
		return analyticsRange{}, bad("end_date", "must be a date like 2026-03-08")
	}
	if q.StartDate == "" {
		start = end.AddDate(0, 0, -(DefaultDays - 1))
	} else if start, err = ParseDate(q.StartDate, loc); err != nil {
		return analyticsRange{}, bad("start_date", "must be a date like 2026-03-01")
	}
	if start.After(end) {
		return analyticsRange{}, bad("start_date", "must not be after end_date")
	}
	if days := daysBetween(start, end) + 1; days > MaxAnalyticsDays {
		return analyticsRange{}, bad("end_date", "the range must not span more than 366 days")
	}
	for field, v := range map[string]string{"agent_id": q.Filter.AgentID, "team_id": q.Filter.TeamID, "channel": q.Filter.Channel} {
		if msg := checkText(v, MaxIDLength); msg != "" {
			return analyticsRange{}, bad(field, msg)
		}
	}
	q.StartDate, q.EndDate, q.Timezone = start.Format(DateLayout), end.Format(DateLayout), loc.String()
	return analyticsRange{q: q, loc: loc, start: start, end: end}, nil
}

// daysBetween counts calendar days from a to b (both midnights in one
// location), immune to DST days of 23 or 25 hours.
func daysBetween(a, b time.Time) int {
	ua := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	ub := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return int(ub.Sub(ua).Hours() / 24)
}

// buckets returns the bucket edges of the range for g: the first starts at
// the range start, the others on calendar boundaries (Mondays, 1sts) in the
// range's timezone, the last ends with the range.
func (r analyticsRange) buckets(g Granularity) ([]time.Time, error) {
	next := func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	switch g {
	case Day:
	case Week:
		next = func(t time.Time) time.Time {
			d := (8 - int(t.Weekday())) % 7 // days to the next Monday
			if d == 0 {
				d = 7
			}
			return t.AddDate(0, 0, d)
		}
	case Month:
		next = func(t time.Time) time.Time { return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location()) }
	default:
		return nil, errs.New(errs.Invalid, "granularity must be DAY, WEEK or MONTH")
	}
	edges := []time.Time{r.from()}
	for t := next(r.from()); t.Before(r.to()); t = next(t) {
		edges = append(edges, t)
	}
	return append(edges, r.to()), nil
}

func (f AnalyticsFilter) stats(bounds []time.Time, groupBy string) db.StatsQuery {
	return db.StatsQuery{Bounds: bounds, AgentID: f.AgentID, TeamID: f.TeamID, Channel: f.Channel, GroupBy: groupBy}
}

// analyticsFor validates q for the context's tenant.
func (s *Service) analyticsFor(ctx context.Context, q AnalyticsQuery) (string, analyticsRange, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return "", analyticsRange{}, err
	}
	r, err := q.resolve(s.now())
	return tenantID, r, err
}

// readStats runs stats queries in one statement: out[i] answers qs[i].
func (s *Service) readStats(ctx context.Context, tenantID string, qs ...db.StatsQuery) (out [][]db.StatRow, err error) {
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		out, err = db.SurveyStatsEach(ctx, idb, tenantID, qs...)
		return err
	})
	return out, err
}

// totals is the stats query of a period's figures.
func (r analyticsRange) totals() db.StatsQuery {
	return r.q.Filter.stats([]time.Time{r.from(), r.to()}, "")
}

// trendQuery is the stats query of a trend in buckets of g, with the
// buckets' edges.
func (r analyticsRange) trendQuery(g Granularity) (db.StatsQuery, []time.Time, error) {
	bounds, err := r.buckets(g)
	if err != nil {
		return db.StatsQuery{}, nil, err
	}
	return r.q.Filter.stats(bounds, ""), bounds, nil
}

// breakdownQuery is the stats query of a breakdown by a dimension.
func (r analyticsRange) breakdownQuery(by Dimension) (db.StatsQuery, error) {
	col, ok := dimColumns[by]
	if !ok {
		return db.StatsQuery{}, errs.New(errs.Invalid, "breakdown must be by AGENT, TEAM or CHANNEL")
	}
	return r.q.Filter.stats([]time.Time{r.from(), r.to()}, col), nil
}

// analyticsOf adds up a period's stats rows.
func (r analyticsRange) analyticsOf(rows []db.StatRow) *Analytics {
	a := &Analytics{Query: r.q, Period: r.period()}
	for _, row := range rows {
		a.add(row)
	}
	return a
}

// Analytics returns the context tenant's survey figures for a period: a
// survey counts as sent when its sent_at falls on a day of the period (in
// the timezone); responses are those sent surveys holding a rating.
func (s *Service) Analytics(ctx context.Context, q AnalyticsQuery) (*Analytics, error) {
	tenantID, r, err := s.analyticsFor(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := s.readStats(ctx, tenantID, r.totals())
	if err != nil {
		return nil, err
	}
	return r.analyticsOf(rows[0]), nil
}

// Trend returns the period's figures per day, week or month (Day when
// empty); every bucket of the period is present, empty ones with zeros.
func (s *Service) Trend(ctx context.Context, q AnalyticsQuery, g Granularity) ([]TrendPoint, error) {
	if g == "" {
		g = Day
	}
	rep, err := s.Report(ctx, q, ReportOf{Trend: g})
	if err != nil {
		return nil, err
	}
	return rep.Trend, nil
}

// Breakdown returns the period's figures per agent, team or channel that
// had surveys sent, most surveys first (then by key).
func (s *Service) Breakdown(ctx context.Context, q AnalyticsQuery, by Dimension) ([]BreakdownRow, error) {
	tenantID, r, err := s.analyticsFor(ctx, q)
	if err != nil {
		return nil, err
	}
	bq, err := r.breakdownQuery(by)
	if err != nil {
		return nil, err
	}
	rows, err := s.readStats(ctx, tenantID, bq)
	if err != nil {
		return nil, err
	}
	return breakdownOf(rows[0]), nil
}

// AnalyticsAndTrend answers Analytics(q) and Trend(q, g) together (Report).
func (s *Service) AnalyticsAndTrend(ctx context.Context, q AnalyticsQuery, g Granularity) (*Analytics, []TrendPoint, error) {
	if g == "" {
		g = Day
	}
	rep, err := s.Report(ctx, q, ReportOf{Totals: true, Trend: g})
	if err != nil {
		return nil, nil, err
	}
	return rep.Analytics, rep.Trend, nil
}

// ReportOf says what a Report holds: the totals, a trend in buckets of
// Trend ("" for none), a breakdown by Breakdown ("" for none).
type ReportOf struct {
	Totals    bool
	Trend     Granularity
	Breakdown Dimension
}

// Report is what Analytics, Trend and Breakdown answer, for the parts
// asked for (nil otherwise).
type Report struct {
	Analytics *Analytics
	Trend     []TrendPoint
	Breakdown []BreakdownRow
}

// Report answers Analytics(q), Trend(q, of.Trend) and Breakdown(q,
// of.Breakdown), the parts of asks for, with one statement: one round trip
// and one snapshot instead of one each (GraphQL asks for all three at
// once). When the trend's buckets partition the period (bucketsPartition)
// the totals are their sum, one query less; otherwise they are a query of
// their own in the statement.
func (s *Service) Report(ctx context.Context, q AnalyticsQuery, of ReportOf) (*Report, error) {
	tenantID, r, err := s.analyticsFor(ctx, q)
	if err != nil {
		return nil, err
	}
	var qs []db.StatsQuery
	trendAt, breakdownAt, totalsAt := -1, -1, -1
	var edges []time.Time
	if of.Trend != "" {
		tq, bounds, err := r.trendQuery(of.Trend)
		if err != nil {
			return nil, err
		}
		trendAt, edges, qs = len(qs), bounds, append(qs, tq)
	}
	if of.Breakdown != "" {
		bq, err := r.breakdownQuery(of.Breakdown)
		if err != nil {
			return nil, err
		}
		breakdownAt, qs = len(qs), append(qs, bq)
	}
	if of.Totals && (trendAt < 0 || !bucketsPartition(edges, r.from(), r.to())) {
		totalsAt, qs = len(qs), append(qs, r.totals())
	}
	rep := &Report{}
	if len(qs) == 0 {
		return rep, nil
	}
	rows, err := s.readStats(ctx, tenantID, qs...)
	if err != nil {
		return nil, err
	}
	if trendAt >= 0 {
		rep.Trend = trendOf(edges, rows[trendAt])
	}
	if breakdownAt >= 0 {
		rep.Breakdown = breakdownOf(rows[breakdownAt])
	}
	switch {
	case totalsAt >= 0:
		rep.Analytics = r.analyticsOf(rows[totalsAt])
	case of.Totals:
		rep.Analytics = &Analytics{Query: r.q, Period: r.period()}
		for _, p := range rep.Trend {
			rep.Analytics.addCounts(p.Counts)
		}
	}
	return rep, nil
}

// bucketsPartition reports whether the bucket edges cover [from, to)
// exactly once: the first edge is from, the last is to, and each is after
// the one before. Then every survey the period counts falls in exactly one
// bucket, so the buckets' counts add up to the period's.
func bucketsPartition(edges []time.Time, from, to time.Time) bool {
	if len(edges) < 2 || !edges[0].Equal(from) || !edges[len(edges)-1].Equal(to) {
		return false
	}
	for i := 1; i < len(edges); i++ {
		if !edges[i].After(edges[i-1]) {
			return false
		}
	}
	return true
}

// trendOf shapes a trend's stats rows into its buckets, every one present.
func trendOf(edges []time.Time, rows []db.StatRow) []TrendPoint {
	out := make([]TrendPoint, len(edges)-1)
	for i := range out {
		out[i].Date = edges[i].Format(DateLayout)
	}
	for _, row := range rows {
		if row.Bucket >= 1 && row.Bucket <= len(out) {
			out[row.Bucket-1].add(row)
		}
	}
	return out
}

// breakdownOf shapes a breakdown's stats rows: a row per key with surveys
// sent, most surveys first (then by key).
func breakdownOf(rows []db.StatRow) []BreakdownRow {
	idx := map[string]int{}
	var out []BreakdownRow
	for _, row := range rows {
		i, ok := idx[row.Key]
		if !ok {
			i = len(out)
			idx[row.Key] = i
			out = append(out, BreakdownRow{Key: row.Key})
		}
		out[i].add(row)
	}
	// A key whose surveys all moved away (a re-assigned agent) leaves zero rows.
	out = slices.DeleteFunc(out, func(b BreakdownRow) bool { return b.Sent == 0 })
	sort.Slice(out, func(i, j int) bool {
		if out[i].Sent != out[j].Sent {
			return out[i].Sent > out[j].Sent
		}
		return out[i].Key < out[j].Key
	})
	return out
}
