package rest_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csat/csat/testenv"
)

// This package's Redis database number.
const redisDB = 2

// movableClock is a service clock the test sets.
type movableClock struct{ at atomic.Int64 }

func (c *movableClock) Set(t time.Time) { c.at.Store(t.UnixNano()) }
func (c *movableClock) Now() time.Time  { return time.Unix(0, c.at.Load()).UTC() }

// sendAt takes a conversation through the real pipeline with the clock at
// sentAt: intake resolved two hours earlier, the worker's send, and, when
// rating > 0, a click on the emailed one-click link.
func sendAt(t *testing.T, s *testenv.Service, clock *movableClock, key, conv string, sentAt time.Time, rating int) {
	t.Helper()
	clock.Set(sentAt)
	email := conv + "@example.com"
	res := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": conv, "contact_email": email, "agent_id": "ann",
		"resolved_at": sentAt.Add(-2 * time.Hour).Format(time.RFC3339),
	})
	if res.Status != 201 {
		t.Fatalf("intake %s: %d %s", conv, res.Status, res.Body)
	}
	id := res.Map(t)["id"].(string)
	msgs := s.SMTP.WaitFor(t, email, 1, 15*time.Second)
	// The email leaves inside the send's transaction: wait for its commit.
	testenv.Eventually(t, 10*time.Second, conv+" sent", func() bool {
		return s.Do(t, "GET", "/api/v1/csat/surveys/"+id, key, nil).Map(t)["status"] == "sent"
	})
	if rating == 0 {
		return
	}
	for _, l := range msgs[0].Links() {
		if strings.Contains(l, "/api/v1/csat/rate?") && strings.HasSuffix(l, fmt.Sprintf("rating=%d", rating)) {
			if r := s.Do(t, "GET", l, "", nil); r.Status != 200 {
				t.Fatalf("rate %s: %d %s", conv, r.Status, r.Body)
			}
			return
		}
	}
	t.Fatalf("no rating %d link in the email to %s", rating, email)
}

type analyticsBody struct {
	Period struct {
		Start, End, Timezone string
	} `json:"period"`
	Sent         int            `json:"total_surveys_sent"`
	Responses    int            `json:"total_responses"`
	Rate         float64        `json:"response_rate"`
	Average      *float64       `json:"average_rating"`
	Distribution map[string]int `json:"rating_distribution"`
	Satisfaction float64        `json:"satisfaction_score"`
}

func (a analyticsBody) String() string {
	avg := "null"
	if a.Average != nil {
		avg = fmt.Sprint(*a.Average)
	}
	return fmt.Sprintf("%s..%s %s sent=%d responses=%d rate=%v avg=%s dist=%v sat=%v",
		a.Period.Start, a.Period.End, a.Period.Timezone, a.Sent, a.Responses, a.Rate, avg, a.Distribution, a.Satisfaction)
}

// TestAnalytics checks the documented figures for surveys sent and rated
// through the real pipeline around midnight, in UTC and in timezones
// behind and ahead of it (one with a half-hour offset), and an empty range.
func TestAnalytics(t *testing.T) {
	clock := &movableClock{}
	clock.Set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Now: clock.Now})
	_, key := s.NewTenant(t, "Acme")
	_, otherKey := s.NewTenant(t, "Other")

	at := func(h, m int) time.Time { return time.Date(2026, 3, 1, h, m, 0, 0, time.UTC) }
	sendAt(t, s, clock, key, "a", at(23, 30), 5) // Mar 1 in UTC and New York, Mar 2 in Kolkata
	sendAt(t, s, clock, key, "b", at(24, 30), 3) // Mar 2 UTC, Mar 1 New York (19:30)
	sendAt(t, s, clock, key, "c", at(28, 30), 0) // Mar 2 UTC, Mar 1 New York (23:30), unanswered
	sendAt(t, s, clock, key, "d", at(29, 30), 4) // Mar 2 UTC, Mar 2 New York (00:30)
	sendAt(t, s, clock, otherKey, "x", at(24, 0), 1)

	cases := []struct {
		name   string
		query  string
		want   string
		apiKey string
	}{
		{"utc-day-1", "start_date=2026-03-01&end_date=2026-03-01",
			"2026-03-01..2026-03-01 UTC sent=1 responses=1 rate=100 avg=5 dist=map[1:0 2:0 3:0 4:0 5:1] sat=100", key},
		{"utc-day-2", "start_date=2026-03-02&end_date=2026-03-02",
			"2026-03-02..2026-03-02 UTC sent=3 responses=2 rate=66.7 avg=3.5 dist=map[1:0 2:0 3:1 4:1 5:0] sat=50", key},
		{"new-york-day-1", "start_date=2026-03-01&end_date=2026-03-01&timezone=America/New_York",
			"2026-03-01..2026-03-01 America/New_York sent=3 responses=2 rate=66.7 avg=4 dist=map[1:0 2:0 3:1 4:0 5:1] sat=50", key},
		{"new-york-day-2", "start_date=2026-03-02&end_date=2026-03-02&timezone=America/New_York",
			"2026-03-02..2026-03-02 America/New_York sent=1 responses=1 rate=100 avg=4 dist=map[1:0 2:0 3:0 4:1 5:0] sat=100", key},
		{"kolkata-day-2", "start_date=2026-03-02&end_date=2026-03-02&timezone=Asia/Kolkata",
			"2026-03-02..2026-03-02 Asia/Kolkata sent=4 responses=3 rate=75 avg=4 dist=map[1:0 2:0 3:1 4:1 5:1] sat=66.7", key},
		{"kolkata-day-1", "start_date=2026-03-01&end_date=2026-03-01&timezone=Asia/Kolkata",
			"2026-03-01..2026-03-01 Asia/Kolkata sent=0 responses=0 rate=0 avg=null dist=map[1:0 2:0 3:0 4:0 5:0] sat=0", key},
		{"filter-agent", "start_date=2026-03-01&end_date=2026-03-02&agent_id=ann",
			"2026-03-01..2026-03-02 UTC sent=4 responses=3 rate=75 avg=4 dist=map[1:0 2:0 3:1 4:1 5:1] sat=66.7", key},
		{"filter-other-agent", "start_date=2026-03-01&end_date=2026-03-02&agent_id=bob",
			"2026-03-01..2026-03-02 UTC sent=0 responses=0 rate=0 avg=null dist=map[1:0 2:0 3:0 4:0 5:0] sat=0", key},
		{"empty-range", "start_date=2025-01-01&end_date=2025-01-31",
			"2025-01-01..2025-01-31 UTC sent=0 responses=0 rate=0 avg=null dist=map[1:0 2:0 3:0 4:0 5:0] sat=0", key},
		{"default-last-30-days", "",
			"2026-02-01..2026-03-02 UTC sent=4 responses=3 rate=75 avg=4 dist=map[1:0 2:0 3:1 4:1 5:1] sat=66.7", key},
		{"other-tenant", "start_date=2026-03-01&end_date=2026-03-02",
			"2026-03-01..2026-03-02 UTC sent=1 responses=1 rate=100 avg=1 dist=map[1:1 2:0 3:0 4:0 5:0] sat=0", otherKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, "GET", "/api/v1/csat/analytics?"+c.query, c.apiKey, nil)
			if res.Status != 200 {
				t.Fatalf("%d %s", res.Status, res.Body)
			}
			var a analyticsBody
			res.JSON(t, &a)
			if got := a.String(); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			// The documented keys are all there, average_rating as null.
			var raw map[string]json.RawMessage
			res.JSON(t, &raw)
			for _, k := range []string{"period", "total_surveys_sent", "total_responses", "response_rate", "average_rating", "rating_distribution"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("missing %s in %s", k, res.Body)
				}
			}
		})
	}
}

// TestAnalyticsBadInput: every bad date, range, timezone or parameter is a
// 400 with a JSON error, never a 500.
func TestAnalyticsBadInput(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, key := s.NewTenant(t, "Acme")
	_, writeOnly := s.NewTenant(t, "W", "csat:write")
	cases := []struct {
		name, query string
		status      int
		field       string
	}{
		{"bad-start", "start_date=2026-3-1&end_date=2026-03-08", 400, "start_date"},
		{"bad-end", "start_date=2026-03-01&end_date=2026-02-30", 400, "end_date"},
		{"datetime", "start_date=2026-03-01T00:00:00Z", 400, "start_date"},
		{"words", "end_date=today", 400, "end_date"},
		{"slashes", "start_date=03/01/2026", 400, "start_date"},
		{"start-after-end", "start_date=2026-03-09&end_date=2026-03-08", 400, "start_date"},
		{"over-366-days", "start_date=2025-01-01&end_date=2026-01-02", 400, "end_date"},
		{"unknown-timezone", "timezone=Mars/Base", 400, "timezone"},
		{"offset-not-zone", "timezone=%2B05:00", 400, "timezone"},
		{"unknown-parameter", "start=2026-03-01", 400, "start"},
		{"repeated-parameter", "start_date=2026-03-01&start_date=2026-03-02", 400, "start_date"},
		{"long-agent", "agent_id=" + strings.Repeat("x", 300), 400, "agent_id"},
		{"nul-channel", "channel=" + url.QueryEscape("a\x00b"), 400, "channel"},
		{"366-days-ok", "start_date=2025-01-01&end_date=2026-01-01", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, "GET", "/api/v1/csat/analytics?"+c.query, key, nil)
			if res.Status != c.status {
				t.Fatalf("%d %s, want %d", res.Status, res.Body, c.status)
			}
			if c.field == "" {
				return
			}
			var e struct {
				Error struct {
					Code    string
					Message string
					Fields  map[string]string
				}
			}
			res.JSON(t, &e)
			if e.Error.Code != "invalid_argument" || e.Error.Message == "" || e.Error.Fields[c.field] == "" {
				t.Fatalf("error body %s, want invalid_argument naming %s", res.Body, c.field)
			}
		})
	}
	if r := s.Do(t, "GET", "/api/v1/csat/analytics", "", nil); r.Status != 401 {
		t.Errorf("no key: %d", r.Status)
	}
	if r := s.Do(t, "GET", "/api/v1/csat/analytics", writeOnly, nil); r.Status != 403 {
		t.Errorf("no csat:read: %d", r.Status)
	}
}
