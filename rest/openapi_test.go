package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"github.com/csat/csat/rest"
	"github.com/csat/csat/testenv"
)

func init() {
	// Browsers get pages from the one-click link; validate them as text.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
}

// contract validates real exchanges against the OpenAPI document.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	covered map[string]map[string]bool // operationId -> "2xx"/"4xx" seen
}

func newContract(t *testing.T, baseURL string) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rest.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json says %s, want 3.1", doc.OpenAPI)
	}
	doc.Servers = openapi3.Servers{{URL: baseURL + "/api/v1"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: router, covered: map[string]map[string]bool{}}
}

// exchange sends a request and validates the answer (and, for a success,
// the request too) against the document.
type exchange struct {
	method, path string
	key          string
	body         string
	header       []string
	want         int
}

func (c *contract) check(t *testing.T, ex exchange) testenv.Response {
	t.Helper()
	name := ex.method + " " + ex.path
	req, err := http.NewRequest(ex.method, ex.path, strings.NewReader(ex.body))
	if err != nil {
		t.Fatal(err)
	}
	if ex.key != "" {
		req.Header.Set("X-API-Key", ex.key)
	}
	if ex.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(ex.header); i += 2 {
		req.Header.Set(ex.header[i], ex.header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != ex.want {
		t.Errorf("%s: status %d, want %d: %s", name, res.StatusCode, ex.want, body)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s: not in the OpenAPI document: %v", name, err)
		return testenv.Response{Status: res.StatusCode, Header: res.Header, Body: body}
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true},
	}
	if res.StatusCode < 300 {
		req.Body = io.NopCloser(strings.NewReader(ex.body))
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s: a request the API accepts breaks the document: %v", name, err)
		}
	}
	if route.Operation.Responses.Status(res.StatusCode) == nil {
		t.Errorf("%s: status %d is not documented for %s", name, res.StatusCode, route.Operation.OperationID)
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: in.Options,
	})
	if err != nil {
		t.Errorf("%s (%d): response breaks the document: %v\n%s", name, res.StatusCode, err, body)
	}
	op := route.Operation.OperationID
	if c.covered[op] == nil {
		c.covered[op] = map[string]bool{}
	}
	c.covered[op][map[bool]string{true: "2xx", false: "error"}[res.StatusCode < 300]] = true
	return testenv.Response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// TestOpenAPI checks the document against every REST route: each route is
// documented, and each operation's real answers, successes and errors,
// validate against it (kin-openapi), as do the requests the API accepts.
func TestOpenAPI(t *testing.T) {
	env := map[string]string{"WEBHOOK_ALLOW_PRIVATE": "true", "CSAT_ROLE": "api"}
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: env})
	c := newContract(t, s.URL)
	tenantID, key := s.NewTenant(t, "Acme", "csat:read", "csat:write", "config:write", "webhooks:write")
	_, readOnly := s.NewTenant(t, "Reader", "csat:read")
	api := func(p string) string { return s.URL + "/api/v1" + p }
	ctx := context.Background()

	// A sent survey with a working link, and one whose link expired.
	tokens := map[string]string{}
	for _, conv := range []string{"live", "old"} {
		email := conv + "@example.com"
		r := c.check(t, exchange{"POST", api("/csat/surveys"), key, `{"conversation_id":"` + conv + `","contact_email":"` + email +
			`","agent_id":"ann","resolved_at":"` + time.Now().Add(-3*time.Hour).UTC().Format(time.RFC3339) + `"}`, nil, 201})
		id := r.Map(t)["id"].(string)
		if _, err := s.App.Svc.Send(ctx, tenantID, id); err != nil {
			t.Fatal(err)
		}
		for _, l := range s.SMTP.WaitFor(t, email, 1, 10*time.Second)[0].Links() {
			if u, err := url.Parse(l); err == nil && u.Query().Get("token") != "" {
				tokens[conv] = u.Query().Get("token")
			}
		}
		tokens[conv+"-id"] = id
	}
	if _, err := s.Admin.ExecContext(ctx, "UPDATE surveys SET expires_at = now() - interval '1 hour' WHERE id = ?", tokens["old-id"]); err != nil {
		t.Fatal(err)
	}
	live, old := url.QueryEscape(tokens["live"]), url.QueryEscape(tokens["old"])

	exchanges := []exchange{
		{"POST", api("/csat/surveys"), key, `{"conversation_id":"live","contact_email":"live@example.com"}`, nil, 200},
		{"POST", api("/csat/surveys"), key, `{"conversation_id":"x","contact_email":"not an email"}`, nil, 422},
		{"POST", api("/csat/surveys"), key, `{"conversation_id":"x","contact_email":"a@b.example","extra":1}`, nil, 400},
		{"POST", api("/csat/surveys"), key, `{"conversation_id":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413},
		{"POST", api("/csat/surveys"), readOnly, `{"conversation_id":"x","contact_email":"a@b.example"}`, nil, 403},
		{"POST", api("/csat/surveys"), "", `{}`, nil, 401},

		{"GET", api("/csat/surveys"), key, "", nil, 200},
		{"GET", api("/csat/surveys?status=sent,completed&from=2020-01-01&to=2099-01-01T00:00:00Z&rating=1,5&agent_id=ann&team_id=t&channel=c&limit=5&offset=0"), key, "", nil, 200},
		{"GET", api("/csat/surveys?rating=7"), key, "", nil, 400},
		{"GET", api("/csat/surveys"), "ak_live_nope", "", nil, 401},

		{"GET", api("/csat/surveys/" + tokens["live-id"]), key, "", nil, 200},
		{"GET", api("/csat/surveys/csat_nope"), key, "", nil, 404},
		{"GET", api("/csat/surveys/" + tokens["live-id"]), readOnly, "", nil, 404},

		{"GET", api("/csat/surveys/export?format=csv&agent_id=ann"), key, "", nil, 200},
		{"GET", api("/csat/surveys/export?format=json"), key, "", nil, 400},
		{"GET", api("/csat/surveys/export"), "", "", nil, 401},

		{"GET", api("/csat/analytics?start_date=2026-03-01&end_date=2026-03-08"), key, "", nil, 200},
		{"GET", api("/csat/analytics?timezone=Europe/Berlin&agent_id=ann"), key, "", nil, 200},
		{"GET", api("/csat/analytics?start_date=2026-03-09&end_date=2026-03-08"), key, "", nil, 400},
		{"GET", api("/csat/analytics"), "", "", nil, 401},

		{"GET", api("/csat/config"), key, "", nil, 200},
		{"GET", api("/csat/config"), "", "", nil, 401},
		{"PUT", api("/csat/config"), key, `{"enabled":true,"survey_delay_hours":4,"survey_expiry_days":14}`, nil, 200},
		{"PUT", api("/csat/config"), key, `{"survey_delay_hours":0}`, nil, 422},
		{"PUT", api("/csat/config"), key, `{"survey_delay_hours":"4"}`, nil, 400},
		{"PUT", api("/csat/config"), readOnly, `{"enabled":false}`, nil, 403},

		{"GET", api("/csat/rate?rating=4&token=" + live), "", "", nil, 200},
		{"GET", api("/csat/rate?rating=5&token=" + live), "", "", []string{"Accept", "text/html"}, 200},
		{"GET", api("/csat/rate?rating=9&token=" + live), "", "", nil, 400},
		{"GET", api("/csat/rate?rating=1&token=ten_nope.abcdefghijklmnopqrstuvwxyz"), "", "", nil, 404},
		{"GET", api("/csat/rate?rating=1&token=" + old), "", "", nil, 410},
		{"GET", api("/csat/rate?rating=1&token=" + old), "", "", []string{"Accept", "text/html"}, 410},
		{"HEAD", api("/csat/rate?rating=1&token=" + live), "", "", nil, 200},
		{"HEAD", api("/csat/rate?rating=1&token=" + old), "", "", nil, 410},

		{"POST", api("/csat/" + tokens["live"] + "/submit"), "", `{"rating":3,"feedback":"fine"}`, nil, 200},
		{"POST", api("/csat/" + tokens["live"] + "/submit"), "", `{"rating":6}`, nil, 422},
		{"POST", api("/csat/" + tokens["live"] + "/submit"), "", `not json`, nil, 400},
		{"POST", api("/csat/" + tokens["old"] + "/submit"), "", `{"rating":3}`, nil, 410},
		{"POST", api("/csat/ten_nope.abcdefghijklmnopqrstuvwxyz/submit"), "", `{"rating":3}`, nil, 404},

		{"GET", api("/openapi.json"), "", "", nil, 200},

		{"GET", api("/webhooks"), key, "", nil, 200},
		{"GET", api("/webhooks"), "", "", nil, 401},
		{"POST", api("/webhooks"), key, `{"url":"ftp://example.com"}`, nil, 400},
		{"POST", api("/webhooks"), readOnly, `{"url":"http://127.0.0.1:9/hook"}`, nil, 403},
		{"GET", api("/webhooks/wh_nope"), key, "", nil, 404},
		{"PATCH", api("/webhooks/wh_nope"), key, `{"enabled":false}`, nil, 404},
		{"DELETE", api("/webhooks/wh_nope"), key, "", nil, 404},
		{"POST", api("/webhooks/wh_nope/rotate-secret"), key, "", nil, 404},
		{"GET", api("/webhooks/wh_nope/deliveries"), key, "", nil, 404},
		{"POST", api("/webhooks/wh_nope/deliveries/d_nope/redeliver"), key, "", nil, 404},
	}
	for _, ex := range exchanges {
		c.check(t, ex)
	}

	// A webhook endpoint through its whole life, with a delivery.
	wh := c.check(t, exchange{"POST", api("/webhooks"), key, `{"url":"http://127.0.0.1:9/hook","description":"test"}`, nil, 201}).Map(t)
	whID, _ := wh["id"].(string)
	c.check(t, exchange{"GET", api("/webhooks/" + whID), key, "", nil, 200})
	c.check(t, exchange{"PATCH", api("/webhooks/" + whID), key, `{"description":"renamed"}`, nil, 200})
	c.check(t, exchange{"PATCH", api("/webhooks/" + whID), key, `{"url":42}`, nil, 400})
	c.check(t, exchange{"POST", api("/webhooks/" + whID + "/rotate-secret"), key, "", nil, 200})
	c.check(t, exchange{"POST", api("/csat/surveys"), key, `{"conversation_id":"hooked","contact_email":"h@example.com"}`, nil, 201})
	var deliveries struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	testenv.Eventually(t, 10*time.Second, "a webhook delivery", func() bool {
		return json.Unmarshal(c.check(t, exchange{"GET", api("/webhooks/" + whID + "/deliveries?limit=10"), key, "", nil, 200}).Body, &deliveries) == nil &&
			len(deliveries.Data) > 0
	})
	c.check(t, exchange{"GET", api("/webhooks/" + whID + "/deliveries?limit=0"), key, "", nil, 400})
	c.check(t, exchange{"POST", api("/webhooks/" + whID + "/deliveries/" + deliveries.Data[0].ID + "/redeliver"), key, "", nil, 202})
	c.check(t, exchange{"DELETE", api("/webhooks/" + whID), key, "", nil, 204})

	// 429s, from a second process with limits on.
	limited := testenv.StartService(t, testenv.Options{RedisDB: redisDB, DSN: s.DSN, SMTP: s.SMTP,
		Env: map[string]string{"RATE_LIMITS_ENABLED": "true", "CSAT_ROLE": "api", "WEBHOOK_ALLOW_PRIVATE": "true"}})
	lc := newContract(t, limited.URL)
	for i := 0; i <= 5; i++ {
		r := lc.check(t, exchange{"GET", limited.URL + "/api/v1/csat/surveys/export?format=csv&status=expired", key, "", nil, map[bool]int{true: 429, false: 200}[i == 5]})
		if i == 5 && r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}

	// Every operation answered at least one success and one error.
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			seen := c.covered[op.OperationID]
			if !seen["2xx"] {
				t.Errorf("%s %s (%s): no success validated", method, path, op.OperationID)
			}
			if !seen["error"] && op.OperationID != "openapi" && method != http.MethodHead {
				t.Errorf("%s %s (%s): no error validated", method, path, op.OperationID)
			}
		}
	}

	// Every REST route is documented (under /api/v1 and its /v1 alias).
	err := chi.Walk(s.App.Routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		var p string
		switch {
		case strings.HasPrefix(route, "/api/v1/"):
			p = strings.TrimPrefix(route, "/api/v1")
		case strings.HasPrefix(route, "/v1/"):
			p = strings.TrimPrefix(route, "/v1")
		default:
			return nil
		}
		if len(p) > 1 {
			p = strings.TrimSuffix(p, "/")
		}
		item := c.doc.Paths.Value(p)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s %s is not in openapi.json", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
