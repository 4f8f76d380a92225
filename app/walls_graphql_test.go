package app_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/csat/csat/testenv"
)

// The tenant-wall cases of /graphql: B's key reads, counts and changes
// nothing of A's through any field.

func gqlData(t *testing.T, r testenv.Response) (map[string]any, []map[string]any) {
	t.Helper()
	var out struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("graphql answer is not JSON: %s", r.Body)
	}
	return out.Data, out.Errors
}

func graphQLGetProbes(w *wallEnv, path string) []probe {
	q := url.QueryEscape(`{ surveys(first: 100) { totalCount edges { node { id contactEmail agentId } } } csatConfig { surveyDelayHours } }`)
	return []probe{
		{method: "GET", path: path + "?query=" + q, key: w.keyB, want: status(200), check: func(t *testing.T, r testenv.Response) {
			d, errs := gqlData(t, r)
			conn, _ := d["surveys"].(map[string]any)
			if len(errs) > 0 || conn["totalCount"] != float64(w.surveysB) {
				t.Errorf("B's GraphQL list: %s", r.Body)
			}
		}},
		{method: "GET", path: path, header: []string{"Accept", "text/html"}, want: status(200)}, // GraphiQL
		{method: "GET", path: path + "?query=" + q, want: status(401)},
	}
}

func graphQLPreflight(_ *wallEnv, path string) []probe {
	return []probe{{method: "OPTIONS", path: path, header: []string{"Origin", "https://elsewhere.example", "Access-Control-Request-Method", "POST"}, want: status(204)}}
}

func graphQLProbes(w *wallEnv, path string) []probe {
	post := func(query string, vars map[string]any, check func(t *testing.T, d map[string]any, errs []map[string]any)) probe {
		return probe{method: "POST", path: path, key: w.keyB, want: status(200), body: map[string]any{"query": query, "variables": vars},
			check: func(t *testing.T, r testenv.Response) {
				d, errs := gqlData(t, r)
				check(t, d, errs)
			}}
	}
	today := time.Now().UTC()
	ps := []probe{
		post(`query($a: String!, $t: String!) {
			byAgent: surveys(filter: {agentId: $a}) { totalCount edges { node { id } } }
			byTeam: surveys(filter: {teamId: $t}, orderBy: {field: RATING}) { totalCount }
			bySearch: surveys(filter: {search: "walls-a@"}) { totalCount }
			completed: surveys(filter: {status: [COMPLETED], hasFeedback: true}) { totalCount }
		}`, map[string]any{"a": "walls-agent-A", "t": "walls-team-A"}, func(t *testing.T, d map[string]any, errs []map[string]any) {
			for _, k := range []string{"byAgent", "byTeam", "bySearch", "completed"} {
				if c, _ := d[k].(map[string]any); len(errs) > 0 || c["totalCount"] != float64(0) {
					t.Errorf("B's %s list counts A's surveys: %v %v", k, d[k], errs)
				}
			}
		}),
		post(`query($s: Date!, $e: Date!) { csatConfig { surveyDelayHours }
			all: csatAnalytics(startDate: $s, endDate: $e) { totalResponses breakdown(by: AGENT) { key } }
			a: csatAnalytics(startDate: $s, endDate: $e, timezone: "Asia/Kolkata", filter: {agentId: "walls-agent-A", channel: "walls-chan-A"}) { totalSurveysSent trend { surveysSent } } }`,
			map[string]any{"s": today.AddDate(0, 0, -1).Format("2006-01-02"), "e": today.AddDate(0, 0, 1).Format("2006-01-02")},
			func(t *testing.T, d map[string]any, errs []map[string]any) {
				cfg, _ := d["csatConfig"].(map[string]any)
				all, _ := d["all"].(map[string]any)
				a, _ := d["a"].(map[string]any)
				if len(errs) > 0 || cfg["surveyDelayHours"] == float64(17) || all["totalResponses"] != float64(0) || a["totalSurveysSent"] != float64(0) {
					t.Errorf("B's config/analytics show A's: %v %v", d, errs)
				}
			}),
		post(`mutation { scheduleSurvey(input: {conversationId: "shared-conv-1", contactEmail: "b3@example.com"}) { id } }`, nil,
			func(t *testing.T, d map[string]any, errs []map[string]any) {
				if sv, _ := d["scheduleSurvey"].(map[string]any); len(errs) > 0 || sv["id"] == w.surveysA[1] {
					t.Errorf("B's scheduleSurvey: %v %v", d, errs)
				}
			}),
	}
	ps = append(ps, graphQLWebhookProbes(w, post)...)
	for _, id := range w.surveysA {
		ps = append(ps, post(`query($id: ID!) { survey(id: $id) { id } }`, map[string]any{"id": id},
			func(t *testing.T, d map[string]any, errs []map[string]any) {
				if len(errs) > 0 || d["survey"] != nil {
					t.Errorf("B read A's survey: %v %v", d, errs)
				}
			}))
		for _, m := range []string{"resendSurvey", "cancelSurvey"} {
			ps = append(ps, post(`mutation($id: ID!) { `+m+`(id: $id) { id } }`, map[string]any{"id": id},
				func(t *testing.T, d map[string]any, errs []map[string]any) {
					if len(errs) != 1 || errs[0]["extensions"].(map[string]any)["code"] != "NOT_FOUND" {
						t.Errorf("B's %s of A's survey: %v %v", m, d, errs)
					}
				}))
		}
	}
	return ps
}

// graphQLWebhookProbes: B's webhook and customer-config fields name A's
// endpoint and delivery and find nothing; B's own changes stay B's.
func graphQLWebhookProbes(w *wallEnv, post func(string, map[string]any, func(*testing.T, map[string]any, []map[string]any)) probe) []probe {
	ids := map[string]any{"e": w.hookA, "d": w.deliveryA}
	code := func(errs []map[string]any) any {
		if len(errs) != 1 {
			return nil
		}
		ext, _ := errs[0]["extensions"].(map[string]any)
		return ext["code"]
	}
	ps := []probe{
		post(`query($e: ID!) { webhookEndpoints { id url } webhookEndpoint(id: $e) { id deliveries { totalCount nodes { id } } }
			csatConfig { brandName logoUrl accentColor defaultLocale emailSubject emailMessage buttonLabels } }`, ids,
			func(t *testing.T, d map[string]any, errs []map[string]any) {
				for _, e := range d["webhookEndpoints"].([]any) {
					if e.(map[string]any)["id"] == w.hookA {
						t.Errorf("B lists A's endpoint: %v", d)
					}
				}
				if len(errs) > 0 || d["webhookEndpoint"] != nil {
					t.Errorf("B reads A's endpoint: %v %v", d, errs)
				}
			}),
		post(`mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/walls-b"}) { secret endpoint { id } }
			updateCsatConfig(input: {brandName: "walls-brand-B"}) { brandName } }`, nil,
			func(t *testing.T, d map[string]any, errs []map[string]any) {
				ep, _ := d["createWebhookEndpoint"].(map[string]any)
				if len(errs) > 0 || ep == nil || ep["endpoint"].(map[string]any)["id"] == w.hookA {
					t.Errorf("B's createWebhookEndpoint: %v %v", d, errs)
				}
			}),
	}
	for _, q := range []string{
		`mutation($e: ID!) { updateWebhookEndpoint(id: $e, input: {enabled: false}) { id } }`,
		`mutation($e: ID!) { rotateWebhookSecret(id: $e) { secret } }`,
		`mutation($e: ID!, $d: ID!) { redeliverWebhook(endpointId: $e, deliveryId: $d) { id } }`,
		`mutation($e: ID!) { deleteWebhookEndpoint(id: $e) }`,
	} {
		ps = append(ps, post(q, ids, func(t *testing.T, d map[string]any, errs []map[string]any) {
			if code(errs) != "NOT_FOUND" {
				t.Errorf("B's %s on A's endpoint: %v %v", q, d, errs)
			}
		}))
	}
	return ps
}
