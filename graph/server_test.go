package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/csat/csat/db"
	"github.com/csat/csat/graph"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/testenv"
)

// TestServer checks the transports and the hardening around them.
func TestServer(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{
		"CORS_ALLOWED_ORIGINS": "https://dash.example.com",
	}})
	_, key := s.NewTenant(t, "Acme")

	t.Run("playground-for-browsers", func(t *testing.T) {
		res := s.Do(t, "GET", "/graphql", "", nil, "Accept", "text/html,application/xhtml+xml")
		if res.Status != 200 || !strings.Contains(strings.ToLower(string(res.Body)), "graphiql") {
			t.Fatalf("playground: %d %.200s", res.Status, res.Body)
		}
	})
	t.Run("get-query", func(t *testing.T) {
		res := s.Do(t, "GET", "/graphql?query="+url.QueryEscape(`{ csatConfig { surveyDelayHours } }`), key, nil)
		if res.Status != 200 || !strings.Contains(string(res.Body), `"surveyDelayHours":2`) {
			t.Fatalf("GET: %d %s", res.Status, res.Body)
		}
	})
	t.Run("get-refuses-mutations", func(t *testing.T) {
		res := s.Do(t, "GET", "/graphql?query="+url.QueryEscape(`mutation { updateCsatConfig(input: {enabled: false}) { enabled } }`), key, nil)
		if res.Status < 400 || res.Status >= 500 {
			t.Fatalf("GET mutation: %d %s", res.Status, res.Body)
		}
		if d := mustGQL(t, s, key, `{ csatConfig { enabled } }`, nil); dig(d, "csatConfig", "enabled") != true {
			t.Fatal("a GET mutation changed the config")
		}
	})
	t.Run("persisted-queries", func(t *testing.T) {
		q := `{ csatConfig { surveyExpiryDays } }`
		sum := sha256.Sum256([]byte(q))
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
		res := s.Do(t, "POST", "/graphql", key, map[string]any{"extensions": ext})
		if !strings.Contains(string(res.Body), "PERSISTED_QUERY_NOT_FOUND") {
			t.Fatalf("unknown hash: %d %s", res.Status, res.Body)
		}
		if res := s.Do(t, "POST", "/graphql", key, map[string]any{"query": q, "extensions": ext}); res.Status != 200 {
			t.Fatalf("register: %d %s", res.Status, res.Body)
		}
		res = s.Do(t, "POST", "/graphql", key, map[string]any{"extensions": ext})
		if res.Status != 200 || !strings.Contains(string(res.Body), `"surveyExpiryDays":7`) {
			t.Fatalf("by hash: %d %s", res.Status, res.Body)
		}
	})
	t.Run("cors-allowed-origin", func(t *testing.T) {
		res := s.Do(t, "OPTIONS", "/graphql", "", nil, "Origin", "https://dash.example.com",
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-api-key,content-type")
		if res.Status != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "X-API-Key") {
			t.Fatalf("preflight: %d %v", res.Status, res.Header)
		}
		res = s.Do(t, "POST", "/graphql", key, map[string]any{"query": `{ csatConfig { enabled } }`}, "Origin", "https://dash.example.com")
		if res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
			t.Fatalf("POST from an allowed origin: %v", res.Header)
		}
	})
	t.Run("cors-other-origin", func(t *testing.T) {
		res := s.Do(t, "OPTIONS", "/graphql", "", nil, "Origin", "https://evil.example.com", "Access-Control-Request-Method", "POST")
		if res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from another origin allowed: %v", res.Header)
		}
	})
	t.Run("introspection-on", func(t *testing.T) {
		d := mustGQL(t, s, key, `{ __schema { queryType { name } } }`, nil)
		if dig(d, "__schema", "queryType", "name") != "Query" {
			t.Fatalf("introspection: %v", d)
		}
	})
}

// TestHandlerOptions builds the handler directly: introspection off and
// operations recorded in the metrics.
func TestHandlerOptions(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, key := s.NewTenant(t, "Acme")
	m := metrics.New()
	h := graph.NewHandler(graph.Options{Svc: s.App.Svc, Auth: s.App.Tenants, Metrics: m, Introspection: false, Unavailable: db.IsUnavailable})
	c := client.New(h, client.Path("/graphql"), client.AddHeader("X-API-Key", key))

	var resp map[string]any
	if err := c.Post(`{ __schema { queryType { name } } }`, &resp); err == nil || !strings.Contains(err.Error(), "introspection") {
		t.Fatalf("introspection while off: %v", err)
	}
	var cfg struct{ CsatConfig struct{ Enabled bool } }
	c.MustPost(`query Dash { csatConfig { enabled } }`, &cfg)
	_ = c.Post(`{ surveys(first: 500) { totalCount } }`, &resp)
	if n := counter(t, m.GraphQLOps.WithLabelValues("query csatConfig", "ok")); n != 1 {
		t.Fatalf("csat_graphql_operations_total{query csatConfig, ok} = %v", n)
	}
	if n := counter(t, m.GraphQLOps.WithLabelValues("query surveys", "error")); n != 1 {
		t.Fatalf("csat_graphql_operations_total{query surveys, error} = %v", n)
	}
	var h1 dto.Metric
	if err := m.GraphQLDuration.WithLabelValues("query csatConfig").(prometheus.Histogram).Write(&h1); err != nil || h1.Histogram.GetSampleCount() != 1 {
		t.Fatalf("duration samples: %v %v", h1.Histogram.GetSampleCount(), err)
	}

	// Without a key, before anything runs: 401 in the GraphQL shape.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/graphql", strings.NewReader(`{"query":"{ csatConfig { enabled } }"}`)))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"code":"UNAUTHENTICATED"`) {
		t.Fatalf("no key: %d %s", rec.Code, rec.Body)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.Counter.GetValue()
}
