package hardening

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// This package's Redis database numbers (the fault scenarios take the second).
const (
	redisDB       = 9
	redisDBFaults = 11
)

// target is a running API with one tenant, a sent survey and its link.
type target struct {
	s        *testenv.Service
	tenantID string
	key      string
	surveyID string
	token    string
	routes   []route
}

type route struct{ method, pattern string }

// newTarget starts the service (API role) and gives it a tenant with a
// key holding every scope and one sent survey.
func newTarget(tb testing.TB) *target {
	tb.Helper()
	return newTargetEnv(tb, nil)
}

// newTargetEnv is newTarget with more environment for the service.
func newTargetEnv(tb testing.TB, env map[string]string) *target {
	tb.Helper()
	vars := map[string]string{"CSAT_ROLE": "api"}
	for k, v := range env {
		vars[k] = v
	}
	s := testenv.StartService(tb, testenv.Options{RedisDB: redisDB, Env: vars})
	tg := &target{s: s}
	tg.tenantID, tg.key = s.NewTenant(tb, "Hardening", tenants.AllScopes...)
	r := s.Do(tb, "POST", "/api/v1/csat/surveys", tg.key, map[string]any{
		"conversation_id": "h-1", "contact_email": "h@example.com", "resolved_at": "2020-01-01T00:00:00Z"})
	if r.Status != 201 && r.Status != 200 {
		tb.Fatalf("intake: %d %s", r.Status, r.Body)
	}
	var sv struct{ ID string }
	r.JSON(tb, &sv)
	tg.surveyID = sv.ID
	// A survey resolved long ago is past its window: make it due now.
	if _, err := s.Admin.NewRaw("UPDATE surveys SET resolved_at = now(), scheduled_for = now() WHERE id = ?", sv.ID).Exec(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.App.Svc.Send(context.Background(), tg.tenantID, sv.ID); err != nil {
		tb.Fatal(err)
	}
	mail := s.SMTP.WaitFor(tb, "h@example.com", 1, 0)[0]
	for _, l := range mail.Links() {
		if u, err := url.Parse(l); err == nil && u.Query().Get("token") != "" {
			tg.token = u.Query().Get("token")
		}
	}
	if tg.token == "" {
		tb.Fatalf("no token in the survey email:\n%s", mail.Text)
	}
	err := chi.Walk(s.App.Routes, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		tg.routes = append(tg.routes, route{method, pattern})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Slice(tg.routes, func(i, j int) bool {
		return tg.routes[i].method+tg.routes[i].pattern < tg.routes[j].method+tg.routes[j].pattern
	})
	return tg
}

// fill puts v into every {param} of a route pattern; a trailing * of a
// mounted handler becomes "x".
func fill(pattern, v string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(pattern[:i])
		b.WriteString(url.PathEscape(v))
		pattern = pattern[i+j+1:]
	}
	b.WriteString(pattern)
	return strings.Replace(b.String(), "*", "x", 1)
}

// isAPI reports whether a path answers JSON errors (everything but the
// public HTML pages and mounted operator UIs).
func isAPI(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/v1/")
}
