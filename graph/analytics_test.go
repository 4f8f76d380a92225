package graph_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

// TestAnalytics: csatAnalytics shows the same figures as REST analytics
// on the same data, trend buckets fall on days, weeks and months of the
// requested timezone, and another tenant's surveys never count.
func TestAnalytics(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	otherID, _ := s.NewTenant(t, "Other")
	type sent struct {
		at             string
		rating         int
		agent, channel string
	}
	data := []sent{
		{"2026-03-02T03:30:00Z", 5, "a1", "email"}, // Mar 1, 22:30 in New York
		{"2026-03-02T06:00:00Z", 3, "a1", ""},      // Mar 2
		{"2026-03-03T12:00:00Z", 0, "a2", "chat"},  // Mar 3, unanswered
		{"2026-03-09T12:00:00Z", 4, "a2", ""},      // Mar 9 (EDT since Mar 8)
		{"2026-03-11T03:00:00Z", 1, "a2", "email"}, // Mar 10, 23:00 in New York
		{"2026-02-28T12:00:00Z", 2, "a1", ""},      // before the period
	}
	for i, d := range data {
		sv := intake(t, s, tenantID, fmt.Sprintf("conv-%d", i), func(in *survey.IntakeInput) { in.AgentID, in.Channel = d.agent, d.channel })
		at, _ := time.Parse(time.RFC3339, d.at)
		setSurvey(t, s, tenantID, sv.ID, "status = 'sent', sent_at = ?", at)
		if d.rating > 0 {
			setSurvey(t, s, tenantID, sv.ID, "status = 'completed', rating = ?, responded_at = ?", d.rating, at.Add(time.Hour))
		}
	}
	// The other tenant's survey, sent in the period, never counts.
	o := intake(t, s, otherID, "conv-x")
	setSurvey(t, s, otherID, o.ID, "status = 'completed', sent_at = ?, rating = 1", time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC))

	q := `query($tz: String, $f: AnalyticsFilter) { csatAnalytics(startDate: "2026-03-01", endDate: "2026-03-10", timezone: $tz, filter: $f) {
		period { start end timezone } totalSurveysSent totalResponses responseRate averageRating satisfactionScore
		ratingDistribution { rating count }
		day: trend { date surveysSent responses responseRate averageRating }
		week: trend(granularity: WEEK) { date surveysSent responses }
		month: trend(granularity: MONTH) { date surveysSent }
		breakdown(by: AGENT) { key surveysSent responses averageRating }
		channels: breakdown(by: CHANNEL) { key surveysSent }
	} }`

	for _, c := range []struct {
		tz     string
		filter map[string]any
		rest   string
	}{
		{"America/New_York", nil, "&timezone=America/New_York"},
		{"", nil, ""},
		{"Asia/Tokyo", map[string]any{"agentId": "a2"}, "&timezone=Asia/Tokyo&agent_id=a2"},
		{"", map[string]any{"channel": "email"}, "&channel=email"},
	} {
		t.Run(fmt.Sprintf("same-as-rest%s%v", c.rest, c.filter), func(t *testing.T) {
			vars := map[string]any{"f": c.filter}
			if c.tz != "" {
				vars["tz"] = c.tz
			}
			g := mustGQL(t, s, key, q, vars)["csatAnalytics"].(map[string]any)
			r := s.Do(t, "GET", "/api/v1/csat/analytics?start_date=2026-03-01&end_date=2026-03-10"+c.rest, key, nil).Map(t)
			for gf, rf := range map[string]string{"totalSurveysSent": "total_surveys_sent", "totalResponses": "total_responses",
				"responseRate": "response_rate", "averageRating": "average_rating", "satisfactionScore": "satisfaction_score"} {
				if g[gf] != r[rf] {
					t.Errorf("%s: GraphQL %v, REST %s %v", gf, g[gf], rf, r[rf])
				}
			}
			for _, rc := range g["ratingDistribution"].([]any) {
				rating := dig(rc, "rating").(float64)
				if rest := dig(r, "rating_distribution", fmt.Sprint(rating)); dig(rc, "count") != rest {
					t.Errorf("rating %v: GraphQL %v, REST %v", rating, dig(rc, "count"), rest)
				}
			}
			if dig(g, "period", "start") != dig(r, "period", "start") || dig(g, "period", "timezone") != dig(r, "period", "timezone") {
				t.Errorf("period %v vs %v", g["period"], r["period"])
			}
		})
	}

	d := mustGQL(t, s, key, q, map[string]any{"tz": "America/New_York"})["csatAnalytics"].(map[string]any)
	if d["totalSurveysSent"] != float64(5) || d["totalResponses"] != float64(4) || d["responseRate"] != 80.0 ||
		d["averageRating"] != 3.3 || d["satisfactionScore"] != 50.0 {
		t.Fatalf("New York totals %v", d)
	}
	day := d["day"].([]any)
	if len(day) != 10 {
		t.Fatalf("%d day buckets, want 10", len(day))
	}
	wantSent := map[string]float64{"2026-03-01": 1, "2026-03-02": 1, "2026-03-03": 1, "2026-03-09": 1, "2026-03-10": 1}
	for i, b := range day {
		date := dig(b, "date").(string)
		if want := fmt.Sprintf("2026-03-%02d", i+1); date != want {
			t.Fatalf("bucket %d is %s, want %s", i, date, want)
		}
		if dig(b, "surveysSent") != wantSent[date] {
			t.Errorf("%s: sent %v, want %v", date, dig(b, "surveysSent"), wantSent[date])
		}
	}
	if b := day[2]; dig(b, "responses") != float64(0) || dig(b, "averageRating") != nil || dig(b, "responseRate") != 0.0 {
		t.Errorf("unanswered day %v", b)
	}
	week := d["week"].([]any)
	if len(week) != 3 || dig(week[0], "date") != "2026-03-01" || dig(week[1], "date") != "2026-03-02" || dig(week[2], "date") != "2026-03-09" ||
		dig(week[0], "surveysSent") != float64(1) || dig(week[1], "surveysSent") != float64(2) || dig(week[2], "surveysSent") != float64(2) {
		t.Errorf("weeks %v", week)
	}
	month := d["month"].([]any)
	if len(month) != 1 || dig(month[0], "date") != "2026-03-01" || dig(month[0], "surveysSent") != float64(5) {
		t.Errorf("months %v", month)
	}
	agents := d["breakdown"].([]any)
	if len(agents) != 2 || dig(agents[0], "key") != "a2" || dig(agents[0], "surveysSent") != float64(3) ||
		dig(agents[1], "key") != "a1" || dig(agents[1], "averageRating") != 4.0 {
		t.Errorf("agents %v", agents)
	}

	// The first trend asked for is read with the totals, which are then its
	// sum: whichever trend that is (an argument, a variable, a fragment, one
	// skipped), every figure is the one read on its own.
	t.Run("trend-read-with-totals", func(t *testing.T) {
		const totals = `totalSurveysSent totalResponses responseRate averageRating satisfactionScore ratingDistribution { rating count }`
		const period = `startDate: "2026-03-01", endDate: "2026-03-10", timezone: "America/New_York"`
		alone := mustGQL(t, s, key, `{ csatAnalytics(`+period+`) { `+totals+` } }`, nil)["csatAnalytics"].(map[string]any)
		weeks := mustGQL(t, s, key, `{ csatAnalytics(`+period+`) { m: trend(granularity: MONTH) { date } trend(granularity: WEEK) { date surveysSent responses } } }`, nil)
		wantWeeks := fmt.Sprint(dig(weeks, "csatAnalytics", "trend"))
		for name, c := range map[string]struct {
			q    string
			vars map[string]any
		}{
			"argument":  {`{ csatAnalytics(` + period + `) { ` + totals + ` trend(granularity: WEEK) { date surveysSent responses } } }`, nil},
			"variable":  {`query($g: Granularity) { csatAnalytics(` + period + `) { ` + totals + ` trend(granularity: $g) { date surveysSent responses } } }`, map[string]any{"g": "WEEK"}},
			"inline":    {`{ csatAnalytics(` + period + `) { ` + totals + ` ... on CsatAnalytics { trend(granularity: WEEK) { date surveysSent responses } } } }`, nil},
			"fragment":  {`{ csatAnalytics(` + period + `) { ...t ` + totals + ` } } fragment t on CsatAnalytics { trend(granularity: WEEK) { date surveysSent responses } }`, nil},
			"skipped":   {`{ csatAnalytics(` + period + `) { ` + totals + ` d: trend @skip(if: true) { date } trend(granularity: WEEK) { date surveysSent responses } } }`, nil},
			"day-first": {`{ csatAnalytics(` + period + `) { d: trend { date } ` + totals + ` trend(granularity: WEEK) { date surveysSent responses } } }`, nil},
		} {
			t.Run(name, func(t *testing.T) {
				got := mustGQL(t, s, key, c.q, c.vars)["csatAnalytics"].(map[string]any)
				for f, v := range alone {
					if fmt.Sprint(got[f]) != fmt.Sprint(v) {
						t.Errorf("%s: %v, read alone %v", f, got[f], v)
					}
				}
				if fmt.Sprint(got["trend"]) != wantWeeks {
					t.Errorf("trend %v, read alone %v", got["trend"], wantWeeks)
				}
				if d, ok := got["d"].([]any); ok && len(d) != 10 {
					t.Errorf("%d day buckets, want 10", len(d))
				}
			})
		}
	})

	// Likewise the first breakdown asked for is read with the totals (and
	// the trend), in the same statement: every figure as read on its own.
	t.Run("breakdown-read-with-totals", func(t *testing.T) {
		const totals = `totalSurveysSent totalResponses responseRate averageRating satisfactionScore`
		const period = `startDate: "2026-03-01", endDate: "2026-03-10", timezone: "America/New_York"`
		const rows = `{ key surveysSent responses averageRating }`
		alone := mustGQL(t, s, key, `{ csatAnalytics(`+period+`) { `+totals+` } }`, nil)["csatAnalytics"].(map[string]any)
		// The second breakdown is read on its own.
		second := mustGQL(t, s, key, `{ csatAnalytics(`+period+`) { t: breakdown(by: TEAM) { key } breakdown(by: AGENT) `+rows+` } }`, nil)
		want := fmt.Sprint(dig(second, "csatAnalytics", "breakdown"))
		for name, c := range map[string]struct {
			q    string
			vars map[string]any
		}{
			"argument":   {`{ csatAnalytics(` + period + `) { ` + totals + ` breakdown(by: AGENT) ` + rows + ` } }`, nil},
			"with-trend": {`{ csatAnalytics(` + period + `) { trend(granularity: WEEK) { date } ` + totals + ` breakdown(by: AGENT) ` + rows + ` } }`, nil},
			"variable":   {`query($by: BreakdownDimension!) { csatAnalytics(` + period + `) { ` + totals + ` breakdown(by: $by) ` + rows + ` } }`, map[string]any{"by": "AGENT"}},
			"fragment":   {`{ csatAnalytics(` + period + `) { ...b ` + totals + ` } } fragment b on CsatAnalytics { breakdown(by: AGENT) ` + rows + ` }`, nil},
			"skipped":    {`{ csatAnalytics(` + period + `) { ` + totals + ` t: breakdown(by: TEAM) @skip(if: true) { key } breakdown(by: AGENT) ` + rows + ` } }`, nil},
			"aliased":    {`{ csatAnalytics(` + period + `) { ` + totals + ` breakdown(by: AGENT) ` + rows + ` t: breakdown(by: TEAM) { key } } }`, nil},
		} {
			t.Run(name, func(t *testing.T) {
				got := mustGQL(t, s, key, c.q, c.vars)["csatAnalytics"].(map[string]any)
				for f, v := range alone {
					if fmt.Sprint(got[f]) != fmt.Sprint(v) {
						t.Errorf("%s: %v, read alone %v", f, got[f], v)
					}
				}
				if fmt.Sprint(got["breakdown"]) != want {
					t.Errorf("breakdown %v, read alone %v", got["breakdown"], want)
				}
				if tm, ok := got["t"].([]any); ok && len(tm) == 0 {
					t.Errorf("no teams")
				}
			})
		}
	})

	// In UTC the last survey falls on Mar 11, outside the period.
	d = mustGQL(t, s, key, q, nil)["csatAnalytics"].(map[string]any)
	if d["totalSurveysSent"] != float64(4) || dig(d, "period", "timezone") != "UTC" {
		t.Fatalf("UTC totals %v", d)
	}

	for name, c := range map[string]struct{ q string }{
		"unknown-timezone": {`{ csatAnalytics(startDate: "2026-03-01", endDate: "2026-03-02", timezone: "Mars/Base") { totalSurveysSent } }`},
		"reversed":         {`{ csatAnalytics(startDate: "2026-03-02", endDate: "2026-03-01") { totalSurveysSent } }`},
		"too-long":         {`{ csatAnalytics(startDate: "2024-01-01", endDate: "2026-03-01") { totalSurveysSent } }`},
		"not-a-date":       {`{ csatAnalytics(startDate: "2026-03-01T00:00:00Z", endDate: "2026-03-02") { totalSurveysSent } }`},
	} {
		t.Run(name, func(t *testing.T) {
			if r := gql(t, s, key, c.q, nil); r.code() != "BAD_USER_INPUT" {
				t.Fatalf("got %d %+v", r.Status, r.Errors)
			}
		})
	}
}
