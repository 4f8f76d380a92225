package graph_test

import (
	"strings"
	"testing"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// TestErrorCodes: each error reaches the client with its extensions.code,
// and malformed requests are client errors, never 500s.
func TestErrorCodes(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	_, readOnly := s.NewTenant(t, "Reader", tenants.ScopeRead)
	_, writeOnly := s.NewTenant(t, "Writer", tenants.ScopeWrite)
	pending := intake(t, s, tenantID, "conv-1")

	// A cursor of the default order, to misuse with another one.
	first := fetchPage(t, s, key, map[string]any{"first": 1})

	cases := []struct {
		name, key, query string
		vars             map[string]any
		status           int
		code             string
		field            string // extensions.fields key expected
	}{
		{"no-key", "", `{ csatConfig { enabled } }`, nil, 401, "UNAUTHENTICATED", ""},
		{"unknown-key", "ak_live_" + strings.Repeat("x", 32), `{ csatConfig { enabled } }`, nil, 401, "UNAUTHENTICATED", ""},
		{"not-a-key", "hello", `{ surveys { totalCount } }`, nil, 401, "UNAUTHENTICATED", ""},
		{"read-only-schedules", readOnly, `mutation { scheduleSurvey(input: {conversationId: "c", contactEmail: "a@b.example"}) { id } }`, nil, 200, "FORBIDDEN", ""},
		{"read-only-config", readOnly, `mutation { updateCsatConfig(input: {enabled: false}) { enabled } }`, nil, 200, "FORBIDDEN", ""},
		{"read-only-resend", readOnly, `mutation { resendSurvey(id: "x") { id } }`, nil, 200, "FORBIDDEN", ""},
		{"write-only-lists", writeOnly, `{ surveys { totalCount } }`, nil, 200, "FORBIDDEN", ""},
		{"write-only-subscribes-nothing-else", writeOnly, `{ csatConfig { enabled } }`, nil, 200, "FORBIDDEN", ""},
		{"first-too-large", key, `{ surveys(first: 101) { totalCount } }`, nil, 200, "BAD_USER_INPUT", ""},
		{"last-too-large", key, `{ surveys(last: 101) { totalCount } }`, nil, 200, "BAD_USER_INPUT", ""},
		{"first-negative", key, `{ surveys(first: -1) { totalCount } }`, nil, 200, "BAD_USER_INPUT", ""},
		{"garbage-cursor", key, `{ surveys(after: "nope!") { totalCount } }`, nil, 200, "BAD_USER_INPUT", ""},
		{"cursor-of-another-order", key, `query($c: String) { surveys(after: $c, orderBy: {field: RATING}) { totalCount } }`, map[string]any{"c": first.endCur}, 200, "BAD_USER_INPUT", ""},
		{"bad-email", key, `mutation { scheduleSurvey(input: {conversationId: "c", contactEmail: "nope"}) { id } }`, nil, 200, "BAD_USER_INPUT", "contact_email"},
		{"bad-delay", key, `mutation { updateCsatConfig(input: {surveyDelayHours: 100}) { enabled } }`, nil, 200, "BAD_USER_INPUT", "survey_delay_hours"},
		{"bad-date", key, `{ csatAnalytics(startDate: "2026-13-01", endDate: "2026-03-01") { totalResponses } }`, nil, 200, "BAD_USER_INPUT", ""},
		{"resend-pending", key, `mutation($id: ID!) { resendSurvey(id: $id) { id } }`, map[string]any{"id": pending.ID}, 200, "BAD_USER_INPUT", ""},
		{"resend-unknown", key, `mutation { resendSurvey(id: "csat_unknown") { id } }`, nil, 200, "NOT_FOUND", ""},
		{"cancel-unknown", key, `mutation { cancelSurvey(id: "csat_unknown") { id } }`, nil, 200, "NOT_FOUND", ""},
		{"parse-error", key, `{ surveys(`, nil, 422, "GRAPHQL_PARSE_FAILED", ""},
		{"unknown-field", key, `{ surveys { nope } }`, nil, 422, "GRAPHQL_VALIDATION_FAILED", ""},
		{"wrong-variable-type", key, `query($n: Int) { surveys(first: $n) { totalCount } }`, map[string]any{"n": "ten"}, 422, "GRAPHQL_VALIDATION_FAILED", ""},
		{"too-complex", key, `{ a: surveys(first: 100) { ...all } b: surveys(first: 100) { ...all } c: surveys(first: 100) { ...all } }
			fragment all on SurveyConnection { totalCount pageInfo { hasNextPage endCursor } edges { cursor node {
			id conversationId contactEmail contactName rating feedback status scheduledFor sentAt respondedAt expiresAt createdAt agentId teamId channel } } }`,
			nil, 200, "COMPLEXITY_LIMIT_EXCEEDED", ""},
		{"too-deep", key, "{ __schema { types { fields { type " + strings.Repeat("{ ofType ", 14) + "{ name }" + strings.Repeat(" }", 14) + " } } } }",
			nil, 422, "GRAPHQL_VALIDATION_FAILED", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := gql(t, s, c.key, c.query, c.vars)
			if r.Status != c.status || r.code() != c.code {
				t.Fatalf("got %d %+v, want %d %s", r.Status, r.Errors, c.status, c.code)
			}
			if c.field != "" {
				if f, _ := r.Errors[0].Extensions["fields"].(map[string]any); f[c.field] == nil {
					t.Fatalf("extensions.fields lacks %s: %+v", c.field, r.Errors[0].Extensions)
				}
			}
			for _, e := range r.Errors {
				if strings.Contains(e.Message, "sql") || strings.Contains(e.Message, "pgdriver") {
					t.Fatalf("internals leaked: %q", e.Message)
				}
			}
		})
	}

	t.Run("a-full-page-is-within-the-complexity-limit", func(t *testing.T) {
		mustGQL(t, s, key, `{ surveys(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node {
			id conversationId contactEmail contactName rating feedback status scheduledFor sentAt respondedAt expiresAt createdAt agentId teamId channel } } } }`, nil)
	})
	t.Run("bearer-key", func(t *testing.T) {
		r := gql(t, s, "", `{ csatConfig { enabled } }`, nil, "Authorization", "Bearer "+key)
		if r.Status != 200 || len(r.Errors) > 0 || dig(r.Data, "csatConfig", "enabled") != true {
			t.Fatalf("bearer: %d %+v %v", r.Status, r.Errors, r.Data)
		}
	})
	t.Run("malformed-bodies", func(t *testing.T) {
		for _, body := range []string{`{"query": `, `[]`, `{"query": 5}`, `not json`, ``} {
			res := s.Do(t, "POST", "/graphql", key, body)
			if res.Status >= 500 || res.Status < 400 {
				t.Fatalf("body %q answered %d %s", body, res.Status, res.Body)
			}
		}
		res := s.Do(t, "POST", "/graphql", key, `{"query": "`+strings.Repeat("x", 200<<10)+`"}`)
		if res.Status >= 500 || res.Status < 400 {
			t.Fatalf("oversized body answered %d", res.Status)
		}
	})
}

// TestRateLimited: past the per-key GraphQL budget the answer is a 429 in
// the GraphQL shape with extensions.code RATE_LIMITED.
func TestRateLimited(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"RATE_LIMITS_ENABLED": "true"}})
	_, key := s.NewTenant(t, "Acme")
	_, other := s.NewTenant(t, "Other")
	for i := 0; i < 200; i++ {
		r := gql(t, s, key, `{ csatConfig { enabled } }`, nil)
		if r.Status == 200 {
			continue
		}
		if r.Status != 429 || r.code() != "RATE_LIMITED" || i < 100 {
			t.Fatalf("request %d: %d %+v", i, r.Status, r.Errors)
		}
		// Another key has its own budget.
		if r := gql(t, s, other, `{ csatConfig { enabled } }`, nil); r.Status != 200 {
			t.Fatalf("another key: %d %+v", r.Status, r.Errors)
		}
		return
	}
	t.Fatal("200 requests in a row were never rate limited")
}
