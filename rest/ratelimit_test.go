package rest_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/csat/csat/testenv"
)

var limitsOn = map[string]string{"RATE_LIMITS_ENABLED": "true", "CSAT_ROLE": "api"}

// exhaust sends requests until one is refused and checks that exactly n
// got through (plus what the GCRA refilled meanwhile: one per period/n),
// with the headers on every answer and the 429's Retry-After and JSON body.
func exhaust(t *testing.T, n int, do func(i int) testenv.Response) testenv.Response {
	t.Helper()
	start := time.Now()
	allowed := 0
	for i := 0; ; i++ {
		r := do(i)
		if got := r.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(n) {
			t.Fatalf("request %d: X-RateLimit-Limit %q, want %d (status %d)", i+1, got, n, r.Status)
		}
		if r.Header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("request %d: no X-RateLimit-Reset", i+1)
		}
		rem, err := strconv.Atoi(r.Header.Get("X-RateLimit-Remaining"))
		if err != nil {
			t.Fatalf("request %d: X-RateLimit-Remaining %q", i+1, r.Header.Get("X-RateLimit-Remaining"))
		}
		if i == 0 && rem != n-1 {
			t.Fatalf("first request: %d remaining, want %d", rem, n-1)
		}
		if r.Status == 429 {
			refilled := int(time.Since(start) / (time.Minute / time.Duration(n)))
			if allowed < n || allowed > n+refilled {
				t.Fatalf("%d requests got through before the 429, want %d (+%d refilled)", allowed, n, refilled)
			}
			if rem != 0 {
				t.Errorf("429 with %d remaining", rem)
			}
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
			}
			return r
		}
		allowed++
		if allowed > 2*n {
			t.Fatalf("no 429 after %d requests", allowed)
		}
	}
}

func jsonRateLimited(t *testing.T, r testenv.Response) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	r.JSON(t, &e)
	if e.Error.Code != "rate_limited" || e.Error.Message == "" {
		t.Errorf("429 body %s", r.Body)
	}
}

// TestRateLimits reaches every limit exactly at its number: the documented
// ones (rate 30, list 30, submit 10, analytics 30 per minute) and the rest.
func TestRateLimits(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: limitsOn})
	_, key := s.NewTenant(t, "Acme")
	cases := []struct {
		name  string
		limit int
		do    func(i int) testenv.Response
		json  bool
	}{
		{"rate", 30, func(int) testenv.Response {
			return s.Do(t, "GET", "/api/v1/csat/rate?rating=1&token=ten_x.nope", "", nil)
		}, true},
		{"list", 30, func(int) testenv.Response { return s.Do(t, "GET", "/api/v1/csat/surveys?status=bogus", key, nil) }, true},
		{"submit", 10, func(i int) testenv.Response {
			if i%2 == 1 { // the survey page's form post shares the budget
				return s.Do(t, "POST", "/s/ten_x.nope", "", "rating=1", "Content-Type", "application/x-www-form-urlencoded")
			}
			return s.Do(t, "POST", "/api/v1/csat/ten_x.nope/submit", "", map[string]any{"rating": 1})
		}, false},
		{"analytics", 30, func(int) testenv.Response { return s.Do(t, "GET", "/api/v1/csat/analytics?start_date=bad", key, nil) }, true},
		{"page", 30, func(int) testenv.Response { return s.Do(t, "GET", "/s/ten_x.nope", "", nil) }, false},
		{"read", 120, func(int) testenv.Response { return s.Do(t, "GET", "/v1/csat/surveys/csat_nope", key, nil) }, true},
		{"config", 10, func(int) testenv.Response { return s.Do(t, "PUT", "/api/v1/csat/config", key, "[]") }, true},
		{"export", 5, func(int) testenv.Response { return s.Do(t, "GET", "/api/v1/csat/surveys/export?format=pdf", key, nil) }, true},
		{"intake", 300, func(int) testenv.Response { return s.Do(t, "POST", "/api/v1/csat/surveys", key, "{}") }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exhaust(t, c.limit, c.do)
			if c.json {
				jsonRateLimited(t, r)
			}
			if got := counter(t, s.App.Metrics.RateLimited.WithLabelValues(c.name)); got != 1 {
				t.Errorf("csat_rate_limit_rejections_total{limit=%q} = %v, want 1", c.name, got)
			}
		})
	}
	// Another key of the same tenant has its own budget.
	k2, err := s.App.Tenants.CreateKey(context.Background(), mustTenant(t, s, key), []string{"csat:read"})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "GET", "/api/v1/csat/analytics", k2.Key, nil); r.Status != 200 || r.Header.Get("X-RateLimit-Remaining") != "29" {
		t.Errorf("second key: %d remaining %s", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	}
	// Without trusted proxies X-Forwarded-For changes nothing: the request
	// draws on the same, spent budget (GCRA refills one every 2 s, so on a
	// slow machine it may have one left, but never a fresh 29).
	if r := s.Do(t, "GET", "/api/v1/csat/rate?rating=1&token=ten_x.nope", "", nil, "X-Forwarded-For", "198.51.100.1"); r.Status != 429 && r.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("forged X-Forwarded-For escaped the limit: %d, remaining %s", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	}
}

func mustTenant(t *testing.T, s *testenv.Service, key string) string {
	t.Helper()
	p, err := s.App.Tenants.Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return p.TenantID
}

// TestRateLimitSharedAndProxied: two API processes on one Redis share a
// key's budget; behind a trusted proxy each client IP has its own.
func TestRateLimitSharedAndProxied(t *testing.T) {
	env := map[string]string{"RATE_LIMITS_ENABLED": "true", "CSAT_ROLE": "api", "TRUSTED_PROXIES": "127.0.0.1/32"}
	s1 := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: env})
	s2 := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: env, DSN: s1.DSN, SMTP: s1.SMTP})
	_, key := s1.NewTenant(t, "Acme")
	r := exhaust(t, 30, func(i int) testenv.Response {
		s := []*testenv.Service{s1, s2}[i%2]
		return s.Do(t, "GET", "/api/v1/csat/analytics", key, nil)
	})
	jsonRateLimited(t, r)
	if r := s1.Do(t, "GET", "/api/v1/csat/analytics", key, nil); r.Status != 429 {
		t.Errorf("the other process still serves the spent key: %d", r.Status)
	}

	rate := func(s *testenv.Service, ip string) testenv.Response {
		return s.Do(t, "GET", "/api/v1/csat/rate?rating=1&token=ten_x.nope", "", nil, "X-Forwarded-For", ip)
	}
	exhaust(t, 30, func(i int) testenv.Response { return rate([]*testenv.Service{s1, s2}[i%2], "198.51.100.1") })
	if r := rate(s2, "198.51.100.2"); r.Status == 429 || r.Header.Get("X-RateLimit-Remaining") != "29" {
		t.Errorf("another client behind the proxy: %d remaining %s", r.Status, r.Header.Get("X-RateLimit-Remaining"))
	}
	// A forged hop left of the real client does not buy a new budget.
	if r := rate(s1, "203.0.113.50, 198.51.100.1"); r.Status != 429 {
		t.Errorf("forged leftmost X-Forwarded-For escaped the limit: %d", r.Status)
	}
}

// privateRedis runs a redis-server of its own on a free port, so the test
// can stop it without disturbing anyone.
func privateRedis(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Skipf("redis-server not available: %v", err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	testenv.Eventually(t, 10*time.Second, "private redis-server", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	return addr, stop
}

// TestRateLimitFailsOpen: with Redis gone, reads and writes are served
// (unlimited, counted in csat_rate_limiter_errors_total), never a 500.
func TestRateLimitFailsOpen(t *testing.T) {
	addr, stop := privateRedis(t)
	env := map[string]string{"RATE_LIMITS_ENABLED": "true", "CSAT_ROLE": "api", "REDIS_URL": "redis://" + addr + "/0"}
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: env})
	_, key := s.NewTenant(t, "Acme")
	if r := s.Do(t, "GET", "/api/v1/csat/config", key, nil); r.Status != 200 || r.Header.Get("X-RateLimit-Limit") != "120" {
		t.Fatalf("limiter not active before the outage: %d %v", r.Status, r.Header)
	}
	stop()
	requests := []struct{ method, path, body string }{
		{"GET", "/api/v1/csat/config", ""},
		{"PUT", "/api/v1/csat/config", `{"survey_delay_hours": 3}`},
		{"GET", "/api/v1/csat/surveys", ""},
		{"GET", "/api/v1/csat/analytics", ""},
		{"GET", "/api/v1/csat/rate?rating=1&token=ten_x.nope", ""},
	}
	for _, q := range requests {
		var body any
		if q.body != "" {
			body = q.body
		}
		r := s.Do(t, q.method, q.path, key, body)
		if r.Status >= 500 || r.Status == 429 {
			t.Errorf("%s %s with Redis down: %d %s", q.method, q.path, r.Status, r.Body)
		}
		if r.Header.Get("X-RateLimit-Limit") != "" {
			t.Errorf("%s %s: limit headers without a limiter", q.method, q.path)
		}
	}
	if got := counter(t, s.App.Metrics.LimiterErrors); got != float64(len(requests)) {
		t.Errorf("csat_rate_limiter_errors_total = %v, want %d", got, len(requests))
	}
	if r := s.Do(t, "GET", "/api/v1/csat/config", key, nil); r.Map(t)["survey_delay_hours"] != float64(3) {
		t.Errorf("the write during the outage was lost: %s", r.Body)
	}
}

// counter reads a Prometheus counter's value.
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
