package survey

import (
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/errs"
)

func TestCountsFigures(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name         string
		c            Counts
		rate         float64
		avg          *float64
		satisfaction float64
	}{
		{"empty", Counts{}, 0, nil, 0},
		{"sent-no-responses", Counts{Sent: 7}, 0, nil, 0},
		{"documented-example", Counts{Sent: 120, Distribution: [5]int{2, 5, 12, 30, 36}}, 70.8, f(4.1), 77.6},
		{"all-answered", Counts{Sent: 3, Distribution: [5]int{0, 0, 0, 0, 3}}, 100, f(5), 100},
		{"rate-rounds-half-up", Counts{Sent: 8, Distribution: [5]int{1}}, 12.5, f(1), 0},
		{"avg-4.25-is-4.3", Counts{Sent: 4, Distribution: [5]int{0, 0, 0, 3, 1}}, 100, f(4.3), 100},
		{"avg-4.249-is-4.2", Counts{Sent: 1000, Distribution: [5]int{0, 0, 0, 751, 249}}, 100, f(4.2), 100},
		{"third", Counts{Sent: 3, Distribution: [5]int{1}}, 33.3, f(1), 0},
		{"two-thirds", Counts{Sent: 3, Distribution: [5]int{0, 0, 0, 2}}, 66.7, f(4), 100},
		{"satisfaction-share", Counts{Sent: 6, Distribution: [5]int{1, 1, 1, 1, 2}}, 100, f(3.3), 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.c.ResponseRate(); got != c.rate {
				t.Errorf("response rate %v, want %v", got, c.rate)
			}
			got := c.c.AverageRating()
			if (got == nil) != (c.avg == nil) || (got != nil && *got != *c.avg) {
				t.Errorf("average %v, want %v", deref(got), deref(c.avg))
			}
			if got := c.c.SatisfactionScore(); got != c.satisfaction {
				t.Errorf("satisfaction %v, want %v", got, c.satisfaction)
			}
		})
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestAnalyticsQueryNormalize(t *testing.T) {
	now := time.Date(2026, 3, 8, 23, 30, 0, 0, time.UTC) // already the 9th in Berlin
	cases := []struct {
		name       string
		q          AnalyticsQuery
		start, end string
		tz         string
		badField   string // non-empty: a 400 naming this field
	}{
		{"defaults-last-30-days", AnalyticsQuery{}, "2026-02-07", "2026-03-08", "UTC", ""},
		{"default-today-in-timezone", AnalyticsQuery{Timezone: "Europe/Berlin"}, "2026-02-08", "2026-03-09", "Europe/Berlin", ""},
		{"end-only", AnalyticsQuery{EndDate: "2026-01-31"}, "2026-01-02", "2026-01-31", "UTC", ""},
		{"start-only-ends-today", AnalyticsQuery{StartDate: "2026-03-01"}, "2026-03-01", "2026-03-08", "UTC", ""},
		{"one-day", AnalyticsQuery{StartDate: "2026-03-01", EndDate: "2026-03-01"}, "2026-03-01", "2026-03-01", "UTC", ""},
		{"366-days", AnalyticsQuery{StartDate: "2025-03-01", EndDate: "2026-03-01"}, "2025-03-01", "2026-03-01", "UTC", ""},
		{"366-days-leap", AnalyticsQuery{StartDate: "2024-01-01", EndDate: "2024-12-31"}, "2024-01-01", "2024-12-31", "UTC", ""},
		{"367-days", AnalyticsQuery{StartDate: "2025-02-28", EndDate: "2026-03-01"}, "", "", "", "end_date"},
		{"start-after-end", AnalyticsQuery{StartDate: "2026-03-02", EndDate: "2026-03-01"}, "", "", "", "start_date"},
		{"bad-start", AnalyticsQuery{StartDate: "2026-3-1"}, "", "", "", "start_date"},
		{"bad-end", AnalyticsQuery{EndDate: "2026-02-30"}, "", "", "", "end_date"},
		{"time-not-date", AnalyticsQuery{StartDate: "2026-03-01T00:00:00Z"}, "", "", "", "start_date"},
		{"month-13", AnalyticsQuery{StartDate: "2026-13-01"}, "", "", "", "start_date"},
		{"words", AnalyticsQuery{EndDate: "yesterday"}, "", "", "", "end_date"},
		{"unknown-timezone", AnalyticsQuery{Timezone: "Mars/Olympus"}, "", "", "", "timezone"},
		{"local-timezone", AnalyticsQuery{Timezone: "Local"}, "", "", "", "timezone"},
		{"path-timezone", AnalyticsQuery{Timezone: "../../etc/passwd"}, "", "", "", "timezone"},
		{"long-agent", AnalyticsQuery{Filter: AnalyticsFilter{AgentID: strings.Repeat("a", 300)}}, "", "", "", "agent_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.q.Normalize(now)
			if c.badField != "" {
				e := errs.As(err)
				if e == nil || e.Code != errs.Invalid || e.Fields[c.badField] == "" {
					t.Fatalf("want a 400 naming %s, got %v", c.badField, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.StartDate != c.start || got.EndDate != c.end || got.Timezone != c.tz {
				t.Fatalf("got %s..%s %s, want %s..%s %s", got.StartDate, got.EndDate, got.Timezone, c.start, c.end, c.tz)
			}
		})
	}
}

func TestTrendBuckets(t *testing.T) {
	now := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		q        AnalyticsQuery
		g        Granularity
		dates    []string // first day of each bucket
		firstUTC string   // the first edge as a UTC instant
		lastUTC  string   // the last edge
		rollup   bool     // every edge on a whole UTC hour
	}{
		{"days", AnalyticsQuery{StartDate: "2026-03-01", EndDate: "2026-03-03"}, Day,
			[]string{"2026-03-01", "2026-03-02", "2026-03-03"}, "2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z", true},
		{"weeks-clipped", AnalyticsQuery{StartDate: "2026-03-04", EndDate: "2026-03-17"}, Week, // Wed to Tue
			[]string{"2026-03-04", "2026-03-09", "2026-03-16"}, "2026-03-04T00:00:00Z", "2026-03-18T00:00:00Z", true},
		{"week-starting-monday", AnalyticsQuery{StartDate: "2026-03-02", EndDate: "2026-03-08"}, Week,
			[]string{"2026-03-02"}, "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", true},
		{"months", AnalyticsQuery{StartDate: "2026-01-15", EndDate: "2026-03-01"}, Month,
			[]string{"2026-01-15", "2026-02-01", "2026-03-01"}, "2026-01-15T00:00:00Z", "2026-03-02T00:00:00Z", true},
		{"dst-berlin", AnalyticsQuery{StartDate: "2026-03-28", EndDate: "2026-03-30", Timezone: "Europe/Berlin"}, Day,
			[]string{"2026-03-28", "2026-03-29", "2026-03-30"}, "2026-03-27T23:00:00Z", "2026-03-30T22:00:00Z", true},
		{"new-york", AnalyticsQuery{StartDate: "2026-03-01", EndDate: "2026-03-01", Timezone: "America/New_York"}, Day,
			[]string{"2026-03-01"}, "2026-03-01T05:00:00Z", "2026-03-02T05:00:00Z", true},
		{"kolkata-half-hour", AnalyticsQuery{StartDate: "2026-03-01", EndDate: "2026-03-02", Timezone: "Asia/Kolkata"}, Day,
			[]string{"2026-03-01", "2026-03-02"}, "2026-02-28T18:30:00Z", "2026-03-02T18:30:00Z", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := c.q.resolve(now)
			if err != nil {
				t.Fatal(err)
			}
			edges, err := r.buckets(c.g)
			if err != nil {
				t.Fatal(err)
			}
			var dates []string
			for _, e := range edges[:len(edges)-1] {
				dates = append(dates, e.Format(DateLayout))
			}
			if strings.Join(dates, ",") != strings.Join(c.dates, ",") {
				t.Errorf("buckets %v, want %v", dates, c.dates)
			}
			if got := edges[0].UTC().Format(time.RFC3339); got != c.firstUTC {
				t.Errorf("first edge %s, want %s", got, c.firstUTC)
			}
			if got := edges[len(edges)-1].UTC().Format(time.RFC3339); got != c.lastUTC {
				t.Errorf("last edge %s, want %s", got, c.lastUTC)
			}
			if got := r.q.Filter.stats(edges, "").UsesRollup(); got != c.rollup {
				t.Errorf("uses rollup %v, want %v", got, c.rollup)
			}
		})
	}
	if _, err := (analyticsRange{}).buckets("HOUR"); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("unknown granularity: %v", err)
	}
}

// TestBucketsPartition: the totals come from a trend's buckets only when
// the buckets cover the period exactly once.
func TestBucketsPartition(t *testing.T) {
	now := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)
	d := func(day int) time.Time { return time.Date(2026, 3, day, 0, 0, 0, 0, time.UTC) }
	from, to := d(1), d(8)
	cases := []struct {
		name  string
		edges []time.Time
		want  bool
	}{
		{"one-bucket", []time.Time{from, to}, true},
		{"days", []time.Time{d(1), d(2), d(3), d(4), d(5), d(6), d(7), d(8)}, true},
		{"uneven", []time.Time{d(1), d(2), d(7), d(8)}, true},
		{"starts-late", []time.Time{d(2), d(5), d(8)}, false},
		{"starts-early", []time.Time{d(1).Add(-time.Hour), d(5), d(8)}, false},
		{"ends-early", []time.Time{d(1), d(5), d(7)}, false},
		{"ends-late", []time.Time{d(1), d(5), d(9)}, false},
		{"same-instant-elsewhere", []time.Time{from.In(time.FixedZone("X", 3600)), to.In(time.FixedZone("Y", -7200))}, true},
		{"repeated-edge", []time.Time{d(1), d(4), d(4), d(8)}, false},
		{"backwards", []time.Time{d(1), d(5), d(3), d(8)}, false},
		{"one-edge", []time.Time{from}, false},
		{"none", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := bucketsPartition(c.edges, from, to); got != c.want {
				t.Errorf("bucketsPartition = %v, want %v", got, c.want)
			}
		})
	}
	// The trends the service builds partition their period, in every
	// granularity and timezone (DST days and half-hour offsets too).
	for _, q := range []AnalyticsQuery{
		{StartDate: "2026-03-04", EndDate: "2026-03-17"},
		{StartDate: "2025-03-09", EndDate: "2026-03-08", Timezone: "Europe/Berlin"},
		{StartDate: "2026-03-28", EndDate: "2026-03-30", Timezone: "America/New_York"},
		{StartDate: "2026-01-15", EndDate: "2026-03-01", Timezone: "Asia/Kolkata"},
		{StartDate: "2026-03-02", EndDate: "2026-03-02", Timezone: "Australia/Adelaide"},
	} {
		r, err := q.resolve(now)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []Granularity{Day, Week, Month} {
			edges, err := r.buckets(g)
			if err != nil {
				t.Fatal(err)
			}
			if !bucketsPartition(edges, r.from(), r.to()) {
				t.Errorf("%+v %s: the trend's buckets do not partition the period", q, g)
			}
		}
	}
}
