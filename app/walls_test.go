package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/uptrace/bun"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// The tenant walls test walks every registered route. Each one needs an
// entry in wallCases (by method and pattern, the /api/v1 and /v1 prefixes
// removed) or a rule in wallRules; a route without one fails the test, so
// a new route cannot ship without an isolation case.
//
// Tenant A holds surveys (pending, sent, rated, with feedback) and a
// changed config; tenant B holds one survey. Every probe acts as B (B's key,
// or B's tenant id in a token). Checked for every probe: no 5xx and none of
// A's data (markers below) in the answer. Checked once after all probes:
// every row of A in every table with tenant_id is byte-for-byte unchanged.

// wallEnv is the two tenants' data the probes use.
type wallEnv struct {
	s                 *testenv.Service
	tenantA, tenantB  string
	keyA, keyB        string
	surveysA          []string // A's survey ids
	tokenA, tokenB    string   // a sent survey's token of each tenant
	crossAB, crossBA  string   // A's secret under B's tenant id, and B's under A's
	markers           []string // strings only A's data contains
	surveysB, configB int      // B's own counts
	hookA, deliveryA  string   // A's webhook endpoint and one of its deliveries
}

// probe is one request and what its status must be.
type probe struct {
	method, path string
	key          string // API key; "" for none
	body         any
	header       []string
	want         func(status int) bool
	check        func(t *testing.T, r testenv.Response) // optional, beyond the generic checks
}

func status(codes ...int) func(int) bool {
	return func(s int) bool {
		for _, c := range codes {
			if s == c {
				return true
			}
		}
		return false
	}
}

// fill replaces {name} in a route pattern with params[name].
func fill(pattern string, params map[string]string) string {
	for k, v := range params {
		pattern = strings.ReplaceAll(pattern, "{"+k+"}", url.PathEscape(v))
	}
	return pattern
}

// wallCases maps "METHOD /pattern" to the probes B makes against A there.
var wallCases = map[string]func(w *wallEnv, path string) []probe{
	"GET /csat/surveys": func(w *wallEnv, path string) []probe {
		counts := func(want int) func(*testing.T, testenv.Response) {
			return func(t *testing.T, r testenv.Response) {
				if m := r.Map(t); m["total"] != float64(want) {
					t.Errorf("B's list total %v, want %d", m["total"], want)
				}
			}
		}
		return []probe{
			{method: "GET", path: path, key: w.keyB, want: status(200), check: counts(w.surveysB)},
			// A has two completed surveys, B none.
			{method: "GET", path: path + "?status=completed", key: w.keyB, want: status(200), check: counts(0)},
			{method: "GET", path: path + "?limit=100&offset=0&status=sent,completed,pending,expired", key: w.keyB, want: status(200), check: counts(w.surveysB)},
		}
	},
	"POST /csat/surveys": func(w *wallEnv, path string) []probe {
		// A's conversation id is B's own conversation, never A's survey
		// (201 the first time, 200 on the second prefix).
		return []probe{{method: "POST", path: path, key: w.keyB, want: status(201, 200),
			body: map[string]any{"conversation_id": "shared-conv-0", "contact_email": "b2@example.com"},
			check: func(t *testing.T, r testenv.Response) {
				if id := r.Map(t)["id"]; id == w.surveysA[0] {
					t.Errorf("B's intake returned A's survey %v", id)
				}
			}}}
	},
	"GET /csat/surveys/{id}": func(w *wallEnv, path string) []probe {
		var ps []probe
		for _, id := range w.surveysA {
			ps = append(ps, probe{method: "GET", path: fill(path, map[string]string{"id": id}), key: w.keyB, want: status(404)})
		}
		return ps
	},
	"GET /csat/config": func(w *wallEnv, path string) []probe {
		return []probe{{method: "GET", path: path, key: w.keyB, want: status(200), check: func(t *testing.T, r testenv.Response) {
			if m := r.Map(t); m["survey_delay_hours"] != float64(w.configB) {
				t.Errorf("B's config shows delay %v, want B's %d (A has 17)", m["survey_delay_hours"], w.configB)
			}
		}}}
	},
	"PUT /csat/config": func(w *wallEnv, path string) []probe {
		return []probe{{method: "PUT", path: path, key: w.keyB, want: status(200),
			body: map[string]any{"enabled": false, "survey_delay_hours": 5, "survey_expiry_days": 3}}}
	},
	"GET /csat/rate": func(w *wallEnv, path string) []probe {
		return rateProbes("GET", path, w)
	},
	"HEAD /csat/rate": func(w *wallEnv, path string) []probe {
		return rateProbes("HEAD", path, w)
	},
	"POST /csat/{token}/submit": func(w *wallEnv, path string) []probe {
		var ps []probe
		for _, tok := range []string{w.crossAB, w.crossBA} {
			ps = append(ps, probe{method: "POST", path: fill(path, map[string]string{"token": tok}), key: w.keyB, want: status(404),
				body: map[string]any{"rating": 1, "feedback": "from B"}})
		}
		return ps
	},
	"GET /s/{token}": func(w *wallEnv, path string) []probe {
		var ps []probe
		for _, tok := range []string{w.crossAB, w.crossBA} {
			ps = append(ps, probe{method: "GET", path: fill(path, map[string]string{"token": tok}), want: status(404), header: []string{"Accept", "text/html"}})
		}
		return ps
	},
	"POST /s/{token}": func(w *wallEnv, path string) []probe {
		var ps []probe
		for _, tok := range []string{w.crossAB, w.crossBA} {
			ps = append(ps, probe{method: "POST", path: fill(path, map[string]string{"token": tok}), want: status(404),
				body: "rating=1&feedback=from+B", header: []string{"Content-Type", "application/x-www-form-urlencoded"}})
		}
		return ps
	},
	"GET /csat/analytics": func(w *wallEnv, path string) []probe {
		// A has three sent surveys and two responses; B one sent, none rated.
		sent := func(want int) func(*testing.T, testenv.Response) {
			return func(t *testing.T, r testenv.Response) {
				if m := r.Map(t); m["total_surveys_sent"] != float64(want) || m["total_responses"] != float64(0) {
					t.Errorf("B's analytics %v, want %d sent and no responses", m, want)
				}
			}
		}
		return []probe{
			{method: "GET", path: path, key: w.keyB, want: status(200), check: sent(w.surveysB)},
			{method: "GET", path: path + "?agent_id=walls-agent-A&team_id=walls-team-A", key: w.keyB, want: status(200), check: sent(0)},
			{method: "GET", path: path + "?channel=walls-chan-A&timezone=Asia/Kolkata", key: w.keyB, want: status(200), check: sent(0)},
		}
	},
	"GET /csat/surveys/export": func(w *wallEnv, path string) []probe {
		rows := func(want int) func(*testing.T, testenv.Response) {
			return func(t *testing.T, r testenv.Response) {
				if n := strings.Count(strings.TrimSpace(string(r.Body)), "\n"); n != want {
					t.Errorf("B's export has %d rows, want %d:\n%s", n, want, r.Body)
				}
			}
		}
		return []probe{
			{method: "GET", path: path + "?format=csv", key: w.keyB, want: status(200), check: rows(w.surveysB)},
			{method: "GET", path: path + "?agent_id=walls-agent-A", key: w.keyB, want: status(200), check: rows(0)},
		}
	},
	"GET /u/{token}": func(w *wallEnv, path string) []probe {
		return unsubscribeProbes("GET", path, w)
	},
	"POST /u/{token}": func(w *wallEnv, path string) []probe {
		return unsubscribeProbes("POST", path, w)
	},
	"GET /webhooks/": func(w *wallEnv, path string) []probe {
		return []probe{{method: "GET", path: path, key: w.keyB, want: status(200), check: func(t *testing.T, r testenv.Response) {
			if !strings.Contains(string(r.Body), `"data":[]`) {
				t.Errorf("B lists webhook endpoints it never made: %s", r.Body)
			}
		}}}
	},
	"POST /webhooks/": func(w *wallEnv, path string) []probe {
		return []probe{{method: "POST", path: path, key: w.keyB, want: status(201), body: map[string]any{"url": "http://127.0.0.1:9/walls-hook-B"}}}
	},
	"GET /webhooks/{id}":                                  webhookProbes("GET", nil),
	"PATCH /webhooks/{id}":                                webhookProbes("PATCH", map[string]any{"enabled": false, "url": "http://127.0.0.1:9/x"}),
	"DELETE /webhooks/{id}":                               webhookProbes("DELETE", nil),
	"POST /webhooks/{id}/rotate-secret":                   webhookProbes("POST", nil),
	"GET /webhooks/{id}/deliveries":                       webhookProbes("GET", nil),
	"POST /webhooks/{id}/deliveries/{delivery}/redeliver": webhookProbes("POST", nil),
	"GET /openapi.json":                                   noTenantData,
	"GET /graphql":                                        graphQLGetProbes,
	"POST /graphql":                                       graphQLProbes,
	"OPTIONS /graphql":                                    graphQLPreflight,
	"GET /healthz":                                        noTenantData,
	"GET /readyz":                                         noTenantData,
}

// webhookProbes: B names A's endpoint (and delivery) and finds nothing.
func webhookProbes(method string, body any) func(w *wallEnv, path string) []probe {
	return func(w *wallEnv, path string) []probe {
		return []probe{{method: method, path: fill(path, map[string]string{"id": w.hookA, "delivery": w.deliveryA}),
			key: w.keyB, body: body, want: status(404)}}
	}
}

// unsubscribeProbes: cross-tenant secrets, and a survey token used as an
// unsubscribe secret (they are different secrets), find nothing.
func unsubscribeProbes(method, path string, w *wallEnv) []probe {
	var ps []probe
	for _, tok := range []string{w.crossAB, w.crossBA, w.tokenA} {
		p := probe{method: method, path: fill(path, map[string]string{"token": tok}), want: status(404)}
		if method == "POST" {
			p.body, p.header = "List-Unsubscribe=One-Click", []string{"Content-Type", "application/x-www-form-urlencoded"}
		}
		ps = append(ps, p)
	}
	return ps
}

func rateProbes(method, path string, w *wallEnv) []probe {
	var ps []probe
	for _, tok := range []string{w.crossAB, w.crossBA} {
		ps = append(ps, probe{method: method, path: path + "?rating=1&token=" + url.QueryEscape(tok), want: status(404)})
	}
	return ps
}

// noTenantData is the case of a route that serves no tenant's data: B
// (with its key) and a stranger (without) see nothing of A.
func noTenantData(w *wallEnv, path string) []probe {
	return []probe{
		{method: "GET", path: path, key: w.keyB, want: func(int) bool { return true }},
		{method: "GET", path: path, want: func(int) bool { return true }},
	}
}

// wallRules cover route families by prefix.
var wallRules = []struct {
	prefix string
	probes func(w *wallEnv, method, path string) []probe
}{
	// Operator routes (metrics, asynqmon): a tenant's key opens nothing.
	{"/ops/", operatorOnly},
	{"/metrics", operatorOnly},
	{"/debug/", operatorOnly},
	{"/dashboard", staticFiles},
}

// staticFiles: the dashboard's files hold no tenant data (the page reads
// everything through /graphql with the signed-in key); only GET and HEAD.
func staticFiles(w *wallEnv, method, path string) []probe {
	path = strings.TrimSuffix(path, "*")
	want := status(200)
	if method != http.MethodGet && method != http.MethodHead {
		want = status(400, 405)
	}
	return []probe{
		{method: method, path: path, key: w.keyB, want: want},
		{method: method, path: path, want: want},
	}
}

func operatorOnly(w *wallEnv, method, path string) []probe {
	path = strings.TrimSuffix(strings.TrimSuffix(path, "*"), "/") + "/"
	return []probe{
		{method: method, path: path, key: w.keyB, want: status(401, 403, 404)},
		{method: method, path: path, key: w.keyB, header: []string{"Authorization", "Bearer " + w.keyB}, want: status(401, 403, 404)},
	}
}

// TestTenantWallsEveryRoute is the route-by-route isolation test.
func TestTenantWallsEveryRoute(t *testing.T) {
	w := newWallEnv(t)
	before := snapshotTenant(t, w.s, w.tenantA)

	var routes []string
	err := chi.Walk(w.s.App.Routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(routes)
	if len(routes) < 10 {
		t.Fatalf("walked only %d routes: %v", len(routes), routes)
	}
	used := map[string]bool{}
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		key := method + " " + stripAPIPrefix(pattern)
		var probes []probe
		if c, ok := wallCases[key]; ok {
			used[key] = true
			probes = c(w, pattern)
		} else {
			for _, rule := range wallRules {
				if strings.HasPrefix(pattern, rule.prefix) {
					probes = rule.probes(w, method, pattern)
					break
				}
			}
		}
		if probes == nil {
			t.Errorf("route %s has no tenant-wall case: add %q to wallCases in app/walls_test.go (B's key must never read, change or count A's data there)", rt, key)
			continue
		}
		for _, p := range probes {
			w.run(t, rt, p)
		}
	}
	for key := range wallCases {
		if !used[key] {
			t.Errorf("wallCases has %q but no such route is registered: remove or rename it", key)
		}
	}
	if after := snapshotTenant(t, w.s, w.tenantA); after != before {
		t.Errorf("tenant A's rows changed while B probed every route:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func stripAPIPrefix(pattern string) string {
	for _, p := range []string{"/api/v1/", "/v1/"} {
		if strings.HasPrefix(pattern, p) {
			return pattern[len(p)-1:]
		}
	}
	return pattern
}

// run sends one probe and applies the generic checks.
func (w *wallEnv) run(t *testing.T, route string, p probe) {
	t.Helper()
	r := w.s.Do(t, p.method, p.path, p.key, p.body, p.header...)
	what := fmt.Sprintf("%s (%s %s)", route, p.method, p.path)
	if r.Status >= 500 {
		t.Errorf("%s: %d %s", what, r.Status, r.Body)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: no X-Content-Type-Options: nosniff", what)
	}
	if !p.want(r.Status) {
		t.Errorf("%s: status %d: %s", what, r.Status, r.Body)
	}
	for _, m := range w.markers {
		if strings.Contains(string(r.Body), m) || strings.Contains(fmt.Sprint(r.Header), m) {
			t.Errorf("%s: answer contains A's %q: %s", what, m, r.Body)
		}
	}
	if p.check != nil && !t.Failed() {
		p.check(t, r)
	}
}

// newWallEnv gives tenant A three surveys (one rated with feedback, one
// rated by one click, one sent) and config delay 17; tenant B one sent
// survey and the default config.
func newWallEnv(t *testing.T) *wallEnv {
	t.Helper()
	// No worker runs, so nothing is delivered; the webhook URLs are loopback.
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api", "WEBHOOK_ALLOW_PRIVATE": "true"}})
	all := append([]string(nil), tenants.AllScopes...)
	w := &wallEnv{s: s, configB: 2}
	w.tenantA, w.keyA = s.NewTenant(t, "Walls Tenant A-marker", all...)
	w.tenantB, w.keyB = s.NewTenant(t, "Walls Tenant B", all...)
	w.markers = []string{"Walls Tenant A-marker", "walls-a@", "walls-agent-A", "walls-team-A",
		"walls-chan-A", "walls-feedback-A", "walls-name-A", w.tenantA, "walls-hook-A", "walls-desc-A"}
	ctx := context.Background()
	r := s.Do(t, "POST", "/api/v1/webhooks", w.keyA, map[string]any{"url": "http://127.0.0.1:9/walls-hook-A", "description": "walls-desc-A"})
	if r.Status != 201 {
		t.Fatalf("A webhook: %d %s", r.Status, r.Body)
	}
	w.hookA = r.Map(t)["id"].(string)
	var tokensA []string
	for i := range 3 {
		email := fmt.Sprintf("walls-a@a%d.example.com", i)
		r := s.Do(t, "POST", "/api/v1/csat/surveys", w.keyA, map[string]any{
			"conversation_id": fmt.Sprintf("shared-conv-%d", i), "contact_email": email, "contact_name": "walls-name-A",
			"agent_id": "walls-agent-A", "team_id": "walls-team-A", "channel": "walls-chan-A", "resolved_at": due(),
		})
		if r.Status != 201 {
			t.Fatalf("A intake: %d %s", r.Status, r.Body)
		}
		id := r.Map(t)["id"].(string)
		w.surveysA = append(w.surveysA, id)
		if _, err := s.App.Svc.Send(ctx, w.tenantA, id); err != nil {
			t.Fatal(err)
		}
		rate, _ := rateLinks(t, s.SMTP.WaitFor(t, email, 1, 0)[0])
		tokensA = append(tokensA, tokenOf(t, rate[0]))
	}
	if r := s.Do(t, "POST", "/api/v1/csat/"+tokensA[0]+"/submit", "", map[string]any{"rating": 4, "feedback": "walls-feedback-A"}); r.Status != 200 {
		t.Fatalf("A submit: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/api/v1/csat/rate?rating=5&token="+url.QueryEscape(tokensA[1]), "", nil); r.Status != 200 {
		t.Fatalf("A rate: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "PUT", "/api/v1/csat/config", w.keyA, map[string]any{"survey_delay_hours": 17}); r.Status != 200 {
		t.Fatalf("A config: %d %s", r.Status, r.Body)
	}
	w.tokenA = tokensA[2]
	r = s.Do(t, "GET", "/api/v1/webhooks/"+w.hookA+"/deliveries", w.keyA, nil)
	var ds struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if r.JSON(t, &ds); len(ds.Data) == 0 {
		t.Fatalf("A's webhook has no deliveries: %s", r.Body)
	}
	w.deliveryA = ds.Data[0].ID

	r = s.Do(t, "POST", "/api/v1/csat/surveys", w.keyB, map[string]any{
		"conversation_id": "walls-conv-B", "contact_email": "walls-b@example.com", "resolved_at": due()})
	if r.Status != 201 {
		t.Fatalf("B intake: %d %s", r.Status, r.Body)
	}
	idB := r.Map(t)["id"].(string)
	if _, err := s.App.Svc.Send(ctx, w.tenantB, idB); err != nil {
		t.Fatal(err)
	}
	rate, _ := rateLinks(t, s.SMTP.WaitFor(t, "walls-b@example.com", 1, 0)[0])
	w.tokenB = tokenOf(t, rate[0])
	w.surveysB = 1
	secret := func(tok string) string { return tok[strings.LastIndexByte(tok, '.'):] }
	w.crossAB = w.tenantB + secret(w.tokenA)
	w.crossBA = w.tenantA + secret(w.tokenB)
	return w
}

// snapshotTenant renders every row of the tenant in every table with a
// tenant_id column (found in the catalog, so new tables are covered), once
// its analytics deltas are folded, leaving out the folding's own
// bookkeeping (the deltas and the watermark): the service folds in the
// background, which moves rows between tables without changing what they
// mean, and a change B made to A's surveys shows in surveys and the rollups.
func snapshotTenant(t *testing.T, s *testenv.Service, tenantID string) string {
	t.Helper()
	ctx := context.Background()
	admin := s.Admin
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.App.Svc.FoldStats(ctx, tenantID); err != nil {
			t.Fatal(err)
		}
		var unfolded int
		if err := admin.NewRaw(`SELECT count(*) FROM survey_stat_deltas d WHERE d.tenant_id = ?
			AND NOT coalesce(pg_visible_in_snapshot(d.xid, (SELECT snap FROM survey_stat_folds WHERE tenant_id = ?)), false)`,
			tenantID, tenantID).Scan(ctx, &unfolded); err != nil {
			t.Fatal(err)
		}
		if unfolded == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d analytics deltas still unfolded after 10 s", unfolded)
		}
		time.Sleep(20 * time.Millisecond) // another folder holds the tenant: poll
	}
	var tables []string
	if err := admin.NewRaw(`SELECT table_name FROM information_schema.columns
		WHERE table_schema = 'public' AND column_name = 'tenant_id'
		AND table_name NOT IN ('survey_stat_deltas', 'survey_stat_folds') ORDER BY 1`).Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		var rows string
		err := admin.NewRaw(`SELECT coalesce(string_agg(row_to_json(x)::text, E'\n' ORDER BY row_to_json(x)::text), '')
			FROM ? x WHERE tenant_id = ?`, bun.Ident(tbl), tenantID).Scan(ctx, &rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== %s\n%s\n", tbl, rows)
	}
	if !strings.Contains(b.String(), "walls-feedback-A") {
		t.Fatalf("snapshot of A lacks its data:\n%s", b.String())
	}
	return b.String()
}
