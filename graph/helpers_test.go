package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// This package's Redis database number.
const redisDB = 3

// gqlResult is a GraphQL response over HTTP.
type gqlResult struct {
	Status int
	Data   map[string]any
	Errors []gqlErr
}

type gqlErr struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (r gqlResult) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a query to /graphql over real HTTP.
func gql(t *testing.T, s *testenv.Service, key, query string, vars map[string]any, headers ...string) gqlResult {
	t.Helper()
	body := map[string]any{"query": query}
	if vars != nil {
		body["variables"] = vars
	}
	res := s.Do(t, "POST", "/graphql", key, body, headers...)
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []gqlErr       `json:"errors"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		t.Fatalf("graphql answered %d, not JSON: %s", res.Status, res.Body)
	}
	return gqlResult{Status: res.Status, Data: out.Data, Errors: out.Errors}
}

// mustGQL is gql that fails the test on any error.
func mustGQL(t *testing.T, s *testenv.Service, key, query string, vars map[string]any) map[string]any {
	t.Helper()
	r := gql(t, s, key, query, vars)
	if r.Status != 200 || len(r.Errors) > 0 {
		t.Fatalf("graphql %d: %+v\nquery: %s", r.Status, r.Errors, query)
	}
	return r.Data
}

// gqlClient is gqlgen's test client on the service's handler (in process).
func gqlClient(s *testenv.Service, key string) *client.Client {
	return client.New(s.App.Handler, client.Path("/graphql"), client.AddHeader("X-API-Key", key))
}

// tenantCtx is a context acting for a tenant with every scope.
func tenantCtx(tenantID string) context.Context {
	return tenants.NewContext(context.Background(), tenants.Principal{TenantID: tenantID, Scopes: tenants.AllScopes})
}

// intake stores a survey through the domain, as REST and GraphQL do.
func intake(t *testing.T, s *testenv.Service, tenantID, conv string, mod ...func(*survey.IntakeInput)) *db.Survey {
	t.Helper()
	resolved := time.Now().Add(-time.Minute)
	in := survey.IntakeInput{ConversationID: conv, ContactEmail: strings.ToLower(conv) + "@example.com", ResolvedAt: &resolved}
	for _, m := range mod {
		m(&in)
	}
	res, err := s.App.Svc.Intake(tenantCtx(tenantID), in)
	if err != nil || res.Survey == nil {
		t.Fatalf("intake %s: %v %+v", conv, err, res)
	}
	return res.Survey
}

// setSurvey changes a stored survey's columns directly, to build test data
// in states the lifecycle takes hours to reach.
func setSurvey(t *testing.T, s *testenv.Service, tenantID, id, set string, args ...any) {
	t.Helper()
	q := fmt.Sprintf("UPDATE surveys SET %s WHERE tenant_id = ? AND id = ?", set)
	if _, err := s.Admin.ExecContext(context.Background(), q, append(args, tenantID, id)...); err != nil {
		t.Fatalf("update survey: %v", err)
	}
}

func dig(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}
