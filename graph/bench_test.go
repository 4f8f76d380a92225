package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// The GraphQL reads of make bench, in process and without the network:
// what one request costs the Go side (cpu-µs/op is the whole process's
// user and system time per request, Postgres excluded), to compare
// changes to the resolvers and the schema's Go code with.
//
//	go test ./graph -run '^$' -bench GraphQL -benchtime 2000x -count 5

// benchSurveys is the bench tenant's size: a year of surveys by 60 agents,
// enough for every daily rollup row of a year and a full agent breakdown.
const benchSurveys = 20_000

func benchService(b *testing.B) (*testenv.Service, string) {
	s := testenv.StartService(b, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(b, "Bench")
	ctx := context.Background()
	// Sent over the year before now, 60 % answered, ratings skewed high,
	// as the bench's loader spreads them.
	if _, err := s.Admin.ExecContext(ctx, `
		INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, agent_id, team_id, channel,
			status, rating, resolved_at, scheduled_for, sent_at, responded_at, created_at)
		SELECT ?, 'sv_' || lpad(i::text, 8, '0'), 'conv-' || i, 'c' || i || '@example.com',
			'agent-' || (i % 60), 'team-' || (i % 8), (ARRAY['email','chat','phone','web'])[1 + i % 4],
			CASE WHEN i % 5 < 3 THEN 'completed' ELSE 'sent' END,
			CASE WHEN i % 5 < 3 THEN (ARRAY[5,5,5,4,4,3,2,1,5,4])[1 + i % 10] END,
			t - interval '2 hours', t - interval '1 hour', t, CASE WHEN i % 5 < 3 THEN t + interval '1 minute' END, t - interval '2 hours'
		FROM generate_series(1, ?) AS i, LATERAL (SELECT now() - (i * interval '365 days' / ?) AS t) x`,
		tenantID, benchSurveys, benchSurveys); err != nil {
		b.Fatalf("seed: %v", err)
	}
	if _, err := db.FoldStats(ctx, s.Admin, tenantID); err != nil {
		b.Fatalf("fold: %v", err)
	}
	if _, err := s.Admin.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatalf("analyze: %v", err)
	}
	return s, key
}

// postGraphQL posts query with vars to the service's handler, in
// process, and returns the data of a response without errors.
func postGraphQL(b *testing.B, s *testenv.Service, key, query string, vars map[string]any) json.RawMessage {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest("POST", "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	rec := httptest.NewRecorder()
	s.App.Handler.ServeHTTP(rec, req)
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []any           `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != http.StatusOK || len(out.Errors) > 0 {
		b.Fatalf("graphql %d: %s", rec.Code, rec.Body.String())
	}
	return out.Data
}

// measure runs query b.N times, with the i-th request's variables from
// vars, and reports the process's CPU time per request.
func measure(b *testing.B, s *testenv.Service, key, query string, vars func(i int) map[string]any) {
	b.ReportAllocs()
	b.ResetTimer()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for i := range b.N {
		postGraphQL(b, s, key, query, vars(i))
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	b.StopTimer()
	cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
}

// BenchmarkGraphQLAnalytics is make bench's graphql_analytics: a year
// with a weekly trend and a breakdown by agent.
func BenchmarkGraphQLAnalytics(b *testing.B) {
	s, key := benchService(b)
	const q = `query($from: Date!, $to: Date!) { csatAnalytics(startDate: $from, endDate: $to) {
		totalSurveysSent totalResponses responseRate averageRating satisfactionScore
		ratingDistribution { rating count }
		trend(granularity: WEEK) { date surveysSent responses averageRating }
		breakdown(by: AGENT) { key surveysSent responses averageRating } } }`
	now := time.Now().UTC()
	vars := map[string]any{"from": now.AddDate(-1, 0, 0).Format("2006-01-02"), "to": now.Format("2006-01-02")}
	var d struct {
		CsatAnalytics struct {
			TotalSurveysSent int
			Trend            []any
			Breakdown        []any
		}
	}
	_ = json.Unmarshal(postGraphQL(b, s, key, q, vars), &d)
	if a := d.CsatAnalytics; a.TotalSurveysSent != benchSurveys || len(a.Trend) < 52 || len(a.Breakdown) != 60 {
		b.Fatalf("unexpected analytics: %+v", a)
	}
	measure(b, s, key, q, func(int) map[string]any { return vars })
}

// BenchmarkGraphQLSurveys is make bench's graphql_surveys: keyset pages
// of 20 along the cursor, restarting after 50 pages like the bench's
// clients.
func BenchmarkGraphQLSurveys(b *testing.B) {
	s, key := benchService(b)
	const q = `query($after: String) { surveys(first: 20, after: $after) { edges { cursor node { id status rating } } pageInfo { hasNextPage endCursor } } }`
	pages := []map[string]any{{}}
	for len(pages) < 50 {
		var d struct {
			Surveys struct {
				Edges    []any
				PageInfo struct{ EndCursor string }
			}
		}
		_ = json.Unmarshal(postGraphQL(b, s, key, q, pages[len(pages)-1]), &d)
		if len(d.Surveys.Edges) != 20 || d.Surveys.PageInfo.EndCursor == "" {
			b.Fatalf("unexpected page: %+v", d)
		}
		pages = append(pages, map[string]any{"after": d.Surveys.PageInfo.EndCursor})
	}
	measure(b, s, key, q, func(i int) map[string]any { return pages[i%len(pages)] })
}
