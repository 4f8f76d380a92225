package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
	"github.com/csat/csat/webhooks"
)

// This package's Redis database number. The tests run workers, so they do
// not run in parallel.
const redisDB = 6

// hookEnv lets webhooks reach the loopback receiver and retries fast.
var hookEnv = map[string]string{"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_BASE": "50ms"}

var allScopes = []string{tenants.ScopeRead, tenants.ScopeWrite, tenants.ScopeConfigWrite, tenants.ScopeWebhooks}

// request is one POST the receiver got.
type request struct {
	Header  http.Header
	Body    []byte
	Payload webhooks.Payload
	Data    map[string]any
}

// receiver is a real HTTP server on loopback that records every delivery
// and answers with status(n) for the n-th request (0-based).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	status func(n int) int
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{Header: r.Header.Clone(), Body: body}
		var raw struct {
			webhooks.Payload
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Errorf("receiver: body is not JSON: %v", err)
		}
		req.Payload, req.Data = raw.Payload, raw.Data
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, req)
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.status != nil {
			code = rc.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) all() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func (rc *receiver) waitFor(t *testing.T, n int) []request {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%d webhook requests", n), func() bool { return len(rc.all()) >= n })
	return rc.all()
}

func createEndpoint(t *testing.T, s *testenv.Service, key, u string, types ...string) webhooks.EndpointJSON {
	t.Helper()
	body := map[string]any{"url": u, "description": "test receiver"}
	if len(types) > 0 {
		body["event_types"] = types
	}
	r := s.Do(t, "POST", "/api/v1/webhooks", key, body)
	if r.Status != 201 {
		t.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	var e webhooks.EndpointJSON
	r.JSON(t, &e)
	if !strings.HasPrefix(e.Secret, webhooks.SecretPrefix) || len(e.Secret) < 40 {
		t.Fatalf("secret %q is not a whsec_ secret", e.Secret)
	}
	return e
}

func deliveries(t *testing.T, s *testenv.Service, key, endpointID string) []webhooks.DeliveryJSON {
	t.Helper()
	r := s.Do(t, "GET", "/api/v1/webhooks/"+endpointID+"/deliveries?limit=100", key, nil)
	if r.Status != 200 {
		t.Fatalf("deliveries: %d %s", r.Status, r.Body)
	}
	var out struct {
		Data  []webhooks.DeliveryJSON `json:"data"`
		Total int                     `json:"total"`
	}
	r.JSON(t, &out)
	if out.Total != len(out.Data) {
		t.Fatalf("total %d for %d deliveries", out.Total, len(out.Data))
	}
	return out.Data
}

func putConfig(t *testing.T, s *testenv.Service, key string, delay int) {
	t.Helper()
	if r := s.Do(t, "PUT", "/api/v1/csat/config", key, map[string]any{"survey_delay_hours": delay}); r.Status != 200 {
		t.Fatalf("put config: %d %s", r.Status, r.Body)
	}
}

func verify(t *testing.T, secret string, r request) error {
	t.Helper()
	return webhooks.Verify(secret, r.Header.Get(webhooks.SignatureHeader), r.Body, time.Now(), 5*time.Minute)
}

func TestEventsFireOncePerChange(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: hookEnv})
	tenantID, key := s.NewTenant(t, "Acme", allScopes...)
	all := newReceiver(t, nil)
	completedOnly := newReceiver(t, nil)
	ep := createEndpoint(t, s, key, all.URL+"/hook?src=csat")
	ep2 := createEndpoint(t, s, key, completedOnly.URL, "csat.survey.completed")
	if ep.EventTypes[0] != "csat.*" || ep2.EventTypes[0] != "csat.survey.completed" {
		t.Fatalf("event types: %v %v", ep.EventTypes, ep2.EventTypes)
	}

	// Survey A: scheduled, sent, completed by one click, completed again
	// with feedback (a change).
	due := time.Now().Add(-2*time.Hour - time.Second).UTC().Format(time.RFC3339)
	r := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": "conv-a", "contact_email": "a@example.com", "resolved_at": due})
	if r.Status != 201 {
		t.Fatalf("intake: %d %s", r.Status, r.Body)
	}
	idA := r.Map(t)["id"].(string)
	mail := s.SMTP.WaitFor(t, "a@example.com", 1, 15*time.Second)[0]
	// The email leaves inside the send's transaction: wait for its commit.
	testenv.Eventually(t, 10*time.Second, "survey sent", func() bool {
		return s.Do(t, "GET", "/api/v1/csat/surveys/"+idA, key, nil).Map(t)["status"] == "sent"
	})
	var rate string
	for _, l := range mail.Links() {
		if strings.Contains(l, "/api/v1/csat/rate?") && strings.HasSuffix(l, "rating=4") {
			rate = l
		}
	}
	if rate == "" {
		t.Fatalf("no rate link in\n%s", mail.Text)
	}
	if r := s.Do(t, "GET", rate, "", nil); r.Status != 200 {
		t.Fatalf("rate: %d %s", r.Status, r.Body)
	}
	u, _ := url.Parse(rate)
	token := u.Query().Get("token")
	if r := s.Do(t, "POST", "/api/v1/csat/"+token+"/submit", "", map[string]any{"rating": 5, "feedback": "Great"}); r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	// Survey B: resolved a month ago, so its window is over: scheduled, expired.
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	r = s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": "conv-b", "contact_email": "b@example.com", "resolved_at": old})
	if r.Status != 201 {
		t.Fatalf("intake b: %d %s", r.Status, r.Body)
	}
	idB := r.Map(t)["id"].(string)
	putConfig(t, s, key, 3)

	want := map[string]int{
		"csat.survey.scheduled": 2, "csat.survey.sent": 1, "csat.survey.completed": 2,
		"csat.survey.expired": 1, "csat.config.updated": 1,
	}
	all.waitFor(t, 7)
	testenv.Eventually(t, 10*time.Second, "every delivery recorded", func() bool {
		ds := deliveries(t, s, key, ep.ID)
		for _, d := range ds {
			if d.Status != "succeeded" {
				return false
			}
		}
		return len(ds) == 7
	})
	got := map[string]int{}
	ids := map[string]bool{}
	for _, req := range all.all() {
		p := req.Payload
		got[p.Type]++
		if ids[p.ID] || !strings.HasPrefix(p.ID, "evt_") {
			t.Errorf("event id %q repeated or malformed", p.ID)
		}
		ids[p.ID] = true
		if err := verify(t, ep.Secret, req); err != nil {
			t.Errorf("%s: signature: %v", p.Type, err)
		}
		if req.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(req.Header.Get("User-Agent"), "csat-webhooks/") {
			t.Errorf("headers: %v", req.Header)
		}
		if p.TenantID != tenantID || p.CreatedAt == "" || req.Data["updated_at"] == nil {
			t.Errorf("payload lacks tenant_id, created_at or data.updated_at: %s", req.Body)
		}
		switch p.Type {
		case "csat.config.updated":
			if req.Data["survey_delay_hours"] != float64(3) {
				t.Errorf("config payload: %s", req.Body)
			}
		case "csat.survey.expired":
			if req.Data["id"] != idB || req.Data["status"] != "expired" {
				t.Errorf("expired payload: %s", req.Body)
			}
		case "csat.survey.sent", "csat.survey.completed":
			if req.Data["id"] != idA || req.Data["conversation_id"] != "conv-a" {
				t.Errorf("%s payload: %s", p.Type, req.Body)
			}
		}
	}
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("%s fired %d times, want %d (all: %v)", typ, got[typ], n, got)
		}
	}
	if len(all.all()) != 7 {
		t.Errorf("receiver got %d requests, want 7", len(all.all()))
	}
	// The endpoint subscribed to completed only got the two completions,
	// the second carrying the feedback.
	reqs := completedOnly.waitFor(t, 2)
	if len(reqs) != 2 {
		t.Fatalf("completed-only endpoint got %d requests", len(reqs))
	}
	for _, req := range reqs {
		if req.Payload.Type != "csat.survey.completed" || verify(t, ep2.Secret, req) != nil {
			t.Errorf("completed-only endpoint got %s", req.Body)
		}
	}
	if reqs[0].Data["feedback"] != "Great" && reqs[1].Data["feedback"] != "Great" {
		t.Errorf("feedback change not delivered: %s / %s", reqs[0].Body, reqs[1].Body)
	}
	// A secret never shows again.
	if r := s.Do(t, "GET", "/api/v1/webhooks/"+ep.ID, key, nil); r.Status != 200 || strings.Contains(string(r.Body), "whsec_") {
		t.Errorf("get endpoint: %d %s", r.Status, r.Body)
	}
}

func TestRetryThenSuccessRecordsOneDelivery(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: hookEnv})
	_, key := s.NewTenant(t, "Acme", allScopes...)
	rc := newReceiver(t, func(n int) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	ep := createEndpoint(t, s, key, rc.URL, "csat.config.*")
	putConfig(t, s, key, 5)
	rc.waitFor(t, 3)
	var ds []webhooks.DeliveryJSON
	testenv.Eventually(t, 10*time.Second, "delivery succeeded", func() bool {
		ds = deliveries(t, s, key, ep.ID)
		return len(ds) == 1 && ds[0].Status == "succeeded"
	})
	d := ds[0]
	if d.Attempts != 3 || d.LastResponseCode == nil || *d.LastResponseCode != 204 || d.DeliveredAt == nil || d.LastError != nil {
		t.Fatalf("delivery: %+v", d)
	}
	reqs := rc.all()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for _, req := range reqs {
		if req.Payload.ID != d.EventID || verify(t, ep.Secret, req) != nil {
			t.Errorf("attempt body or signature differs: %s", req.Body)
		}
	}
	var e webhooks.EndpointJSON
	s.Do(t, "GET", "/api/v1/webhooks/"+ep.ID, key, nil).JSON(t, &e)
	if e.FailingSince != nil || !e.Enabled {
		t.Errorf("a success clears the failure record: %+v", e)
	}

	// Redeliver sends the same event again as a new delivery.
	r := s.Do(t, "POST", "/api/v1/webhooks/"+ep.ID+"/deliveries/"+d.ID+"/redeliver", key, nil)
	if r.Status != 202 {
		t.Fatalf("redeliver: %d %s", r.Status, r.Body)
	}
	reqs = rc.waitFor(t, 4)
	if reqs[3].Payload.ID != d.EventID {
		t.Errorf("redelivered event %s, want %s", reqs[3].Payload.ID, d.EventID)
	}
	testenv.Eventually(t, 10*time.Second, "two deliveries", func() bool {
		ds = deliveries(t, s, key, ep.ID)
		return len(ds) == 2 && ds[0].Status == "succeeded" && ds[1].Status == "succeeded"
	})
}

func TestPrivateURLRefused(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, key := s.NewTenant(t, "Acme", allScopes...)
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/", "http://192.168.0.10/",
		"http://172.16.5.4/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fd00::1]/",
		"http://[fe80::1]/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
		"ftp://example.com/", "file:///etc/passwd", "not a url", "", "https://user:pw@8.8.8.8/",
	} {
		r := s.Do(t, "POST", "/api/v1/webhooks", key, map[string]any{"url": u})
		var body struct {
			Error struct {
				Code   string            `json:"code"`
				Fields map[string]string `json:"fields"`
			} `json:"error"`
		}
		r.JSON(t, &body)
		if r.Status != 400 || body.Error.Code != "invalid_argument" || body.Error.Fields["url"] == "" {
			t.Errorf("%q: %d %s", u, r.Status, r.Body)
		}
	}
	// A public address is accepted (nothing is sent: no event happens),
	// but updating it to a private one is refused.
	ep := createEndpoint(t, s, key, "https://8.8.8.8/hook")
	if r := s.Do(t, "PATCH", "/api/v1/webhooks/"+ep.ID, key, map[string]any{"url": "http://127.0.0.1/"}); r.Status != 400 {
		t.Errorf("update to private: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "DELETE", "/api/v1/webhooks/"+ep.ID, key, nil); r.Status != 204 {
		t.Errorf("delete: %d %s", r.Status, r.Body)
	}
	// Scopes: reading needs csat:read, writing webhooks:write.
	_, readKey := s.NewTenant(t, "Reader", tenants.ScopeRead)
	if r := s.Do(t, "POST", "/api/v1/webhooks", readKey, map[string]any{"url": "https://8.8.8.8/"}); r.Status != 403 {
		t.Errorf("create without webhooks:write: %d", r.Status)
	}
	if r := s.Do(t, "GET", "/api/v1/webhooks", readKey, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"data":[]`) {
		t.Errorf("list with csat:read: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/api/v1/webhooks/"+ep.ID, readKey, nil); r.Status != 404 {
		t.Errorf("another tenant's endpoint: %d", r.Status)
	}
}

func TestRotationInvalidatesOldSecret(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: hookEnv})
	_, key := s.NewTenant(t, "Acme", allScopes...)
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, key, rc.URL)
	putConfig(t, s, key, 4)
	if err := verify(t, ep.Secret, rc.waitFor(t, 1)[0]); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	r := s.Do(t, "POST", "/api/v1/webhooks/"+ep.ID+"/rotate-secret", key, nil)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	var rotated webhooks.EndpointJSON
	r.JSON(t, &rotated)
	if rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, webhooks.SecretPrefix) {
		t.Fatalf("rotated secret %q", rotated.Secret)
	}
	putConfig(t, s, key, 5)
	req := rc.waitFor(t, 2)[1]
	if err := verify(t, rotated.Secret, req); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if err := verify(t, ep.Secret, req); err != webhooks.ErrBadSignature {
		t.Errorf("old secret still verifies: %v", err)
	}
}

func TestEventSurvivesRedisFlush(t *testing.T) {
	// An API-only process commits the change and enqueues the delivery;
	// Redis then loses it; a worker started afterwards delivers it once,
	// from the Postgres outbox.
	api := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Role: "api", Env: hookEnv})
	_, key := api.NewTenant(t, "Acme", allScopes...)
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, api, key, rc.URL)
	putConfig(t, api, key, 6)
	ctx := context.Background()
	if n, err := api.Redis.DBSize(ctx).Result(); err != nil || n == 0 {
		t.Fatalf("the delivery was not enqueued in Redis: %d keys, %v", n, err)
	}
	if err := api.Redis.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.StartService(t, testenv.Options{DSN: api.DSN, SMTP: api.SMTP, RedisDB: redisDB, Role: "worker",
		Reconcile: 200 * time.Millisecond, Env: hookEnv})
	req := rc.waitFor(t, 1)[0]
	if req.Payload.Type != "csat.config.updated" || verify(t, ep.Secret, req) != nil {
		t.Fatalf("delivered %s", req.Body)
	}
	testenv.Eventually(t, 10*time.Second, "delivery succeeded", func() bool {
		ds := deliveries(t, api, key, ep.ID)
		return len(ds) == 1 && ds[0].Status == "succeeded" && ds[0].Attempts == 1
	})
	if n := len(rc.all()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestEndpointDisabledAfterFailing(t *testing.T) {
	env := map[string]string{"WEBHOOK_DISABLE_AFTER": "1s"}
	for k, v := range hookEnv {
		env[k] = v
	}
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: env})
	_, key := s.NewTenant(t, "Acme", allScopes...)
	rc := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	ep := createEndpoint(t, s, key, rc.URL)
	putConfig(t, s, key, 7)
	var e webhooks.EndpointJSON
	testenv.Eventually(t, 20*time.Second, "endpoint disabled", func() bool {
		s.Do(t, "GET", "/api/v1/webhooks/"+ep.ID, key, nil).JSON(t, &e)
		return !e.Enabled
	})
	if e.DisabledAt == nil || e.DisabledReason == nil || !strings.Contains(*e.DisabledReason, "503") {
		t.Errorf("disabled endpoint: %+v", e)
	}
	ds := deliveries(t, s, key, ep.ID)
	if len(ds) != 1 || ds[0].Status != "failed" || ds[0].Attempts < 2 || *ds[0].LastResponseCode != 503 {
		t.Errorf("delivery: %+v", ds)
	}
	// Enabling it again clears the failure record.
	r := s.Do(t, "PATCH", "/api/v1/webhooks/"+ep.ID, key, map[string]any{"enabled": true})
	r.JSON(t, &e)
	if r.Status != 200 || !e.Enabled || e.DisabledAt != nil || e.FailingSince != nil {
		t.Errorf("re-enable: %d %s", r.Status, r.Body)
	}
}
