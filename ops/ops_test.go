package ops_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"

	"github.com/csat/csat/db"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/ops"
	"github.com/csat/csat/testenv"
)

// This package's Redis database number.
const redisDB = 5

const opsToken = "ops-token-for-tests"

// due is a resolved_at that makes a survey due now with the default 2 h delay.
func due() string { return time.Now().Add(-2*time.Hour - time.Second).UTC().Format(time.RFC3339) }

func intake(t *testing.T, s *testenv.Service, key, conv, email string) string {
	t.Helper()
	res := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": conv, "contact_email": email, "resolved_at": due(),
	})
	if res.Status != 201 {
		t.Fatalf("intake: %d %s", res.Status, res.Body)
	}
	return res.Map(t)["id"].(string)
}

func basic(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+token))
}

func TestAsynqmonBehindToken(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"OPS_TOKEN": opsToken}})
	_, key := s.NewTenant(t, "Acme")
	// A survey due in two hours gives the critical queue a scheduled task.
	res := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "c1", "contact_email": "a@example.com"})
	if res.Status != 201 {
		t.Fatalf("intake: %d %s", res.Status, res.Body)
	}

	for _, tc := range []struct {
		name, path, auth string
		status           int
	}{
		{"ui-no-token-401", "/ops/asynq/", "", 401},
		{"ui-wrong-token-401", "/ops/asynq/", basic("wrong"), 401},
		{"api-wrong-bearer-401", "/ops/asynq/api/queues", "Bearer wrong", 401},
		{"api-empty-basic-401", "/ops/asynq/api/queues", basic(""), 401},
		{"ui-basic-200", "/ops/asynq/", basic(opsToken), 200},
		{"api-bearer-200", "/ops/asynq/api/queues", "Bearer " + opsToken, 200},
		{"metrics-no-token-401", "/metrics", "", 401},
		{"metrics-bearer-200", "/metrics", "Bearer " + opsToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(t, "GET", tc.path, "", nil, "Authorization", tc.auth)
			if r.Status != tc.status {
				t.Fatalf("%s: %d, want %d: %s", tc.path, r.Status, tc.status, r.Body)
			}
			if r.Status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %v", r.Header)
			}
		})
	}

	page := s.Do(t, "GET", "/ops/asynq/", "", nil, "Authorization", basic(opsToken))
	if !strings.Contains(string(page.Body), "<!doctype html>") || !strings.Contains(string(page.Body), "/ops/asynq/") {
		t.Fatalf("asynqmon page: %.300s", page.Body)
	}
	var queues struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Scheduled int    `json:"scheduled"`
		} `json:"queues"`
	}
	s.Do(t, "GET", "/ops/asynq/api/queues", "", nil, "Authorization", "Bearer "+opsToken).JSON(t, &queues)
	found := false
	for _, q := range queues.Queues {
		found = found || (q.Queue == "critical" && q.Scheduled == 1)
	}
	if !found {
		t.Fatalf("queues from asynqmon lack the scheduled send: %+v", queues)
	}
	// Not read-only by default: pausing works (and is undone).
	if r := s.Do(t, "POST", "/ops/asynq/api/queues/critical:pause", "", nil, "Authorization", "Bearer "+opsToken); r.Status != 204 && r.Status != 200 {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "POST", "/ops/asynq/api/queues/critical:resume", "", nil, "Authorization", "Bearer "+opsToken); r.Status != 204 && r.Status != 200 {
		t.Fatalf("resume: %d %s", r.Status, r.Body)
	}
}

func TestAsynqmonReadOnly(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Role: "api",
		Env: map[string]string{"OPS_TOKEN": opsToken, "ASYNQMON_READONLY": "true"}})
	if r := s.Do(t, "GET", "/ops/asynq/api/queues", "", nil, "Authorization", basic(opsToken)); r.Status != 200 {
		t.Fatalf("read: %d", r.Status)
	}
	if r := s.Do(t, "POST", "/ops/asynq/api/queues/critical:pause", "", nil, "Authorization", basic(opsToken)); r.Status != 405 {
		t.Fatalf("pause in read-only mode: %d, want 405", r.Status)
	}
}

func TestAsynqmonOffWithoutToken(t *testing.T) {
	var logs syncBuffer
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Log: &logs})
	if r := s.Do(t, "GET", "/ops/asynq/", "", nil); r.Status != 404 {
		t.Fatalf("asynqmon without OPS_TOKEN: %d, want 404", r.Status)
	}
	if r := s.Do(t, "GET", "/ops/asynq/api/queues", "", nil, "Authorization", "Bearer "); r.Status != 404 {
		t.Fatalf("asynqmon api without OPS_TOKEN: %d, want 404", r.Status)
	}
	if !strings.Contains(logs.String(), "OPS_TOKEN is unset") {
		t.Fatalf("start-up does not say asynqmon is off:\n%s", logs.String())
	}
	// /metrics is open when no token is configured.
	if r := s.Do(t, "GET", "/metrics", "", nil); r.Status != 200 {
		t.Fatalf("metrics without OPS_TOKEN: %d", r.Status)
	}
}

func TestWorkerServesOnlyHealthAndMetrics(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Role: "worker", Env: map[string]string{"OPS_TOKEN": opsToken}})
	_, key := s.NewTenant(t, "Acme")
	for _, tc := range []struct {
		path, auth string
		status     int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "Bearer " + opsToken, 200},
		{"/metrics", "", 401},
		{"/ops/asynq/", basic(opsToken), 404},
		{"/api/v1/csat/config", "", 404},
		{"/s/whatever", "", 404},
	} {
		r := s.Do(t, "GET", tc.path, key, nil, "Authorization", tc.auth)
		if r.Status != tc.status {
			t.Errorf("worker %s: %d, want %d", tc.path, r.Status, tc.status)
		}
	}
}

// scrape returns the samples of /metrics as "name{labels}" -> value.
func scrape(t *testing.T, s *testenv.Service) map[string]float64 {
	t.Helper()
	r := s.Do(t, "GET", "/metrics", "", nil, "Authorization", "Bearer "+opsToken)
	if r.Status != 200 {
		t.Fatalf("metrics: %d", r.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsMoveWithSurveys(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"OPS_TOKEN": opsToken}})
	_, key := s.NewTenant(t, "Acme")
	before := scrape(t, s)
	if before[`csat_surveys_total{event="sent"}`] != 0 || before[`csat_queue_up`] != 1 {
		t.Fatalf("fresh service: sent %v, queue_up %v", before[`csat_surveys_total{event="sent"}`], before[`csat_queue_up`])
	}
	testenv.Eventually(t, 5*time.Second, "the first sweep counted", func() bool {
		return scrape(t, s)[`csat_sweep_runs_total{result="ok"}`] >= 1
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	intake(t, s, key, "c1", "one@example.com")
	intake(t, s, key, "c2", "two@example.com")
	mail := s.SMTP.WaitFor(t, "one@example.com", 1, 15*time.Second)[0]
	s.SMTP.WaitFor(t, "two@example.com", 1, 15*time.Second)
	var rate string
	for _, l := range mail.Links() {
		if strings.Contains(l, "rating=4") {
			rate = l
		}
	}
	// Counted after the commit, which follows the email: poll.
	testenv.Eventually(t, 5*time.Second, "sent counted", func() bool {
		return scrape(t, s)[`csat_surveys_total{event="sent"}`] == 2
	})
	if r := s.Do(t, "GET", rate, "", nil); r.Status != 200 {
		t.Fatalf("rate: %d", r.Status)
	}
	// An error response is counted with its status too.
	s.Do(t, "GET", "/api/v1/csat/surveys/csat_nope", key, nil)

	m := scrape(t, s)
	for name, want := range map[string]float64{
		`csat_surveys_total{event="scheduled"}`:                                                 2,
		`csat_surveys_total{event="sent"}`:                                                      2,
		`csat_surveys_total{event="completed"}`:                                                 1,
		`csat_emails_total{result="sent"}`:                                                      2,
		`csat_http_requests_total{method="POST",route="/api/v1/csat/surveys",status="201"}`:     2,
		`csat_http_requests_total{method="GET",route="/api/v1/csat/rate",status="200"}`:         1,
		`csat_http_requests_total{method="GET",route="/api/v1/csat/surveys/{id}",status="404"}`: 1,
		`csat_http_request_duration_seconds_count{method="POST",route="/api/v1/csat/surveys"}`:  2,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	if _, ok := m[`csat_queue_tasks{queue="default",state="scheduled"}`]; !ok {
		t.Errorf("no queue size for the expiry queue")
	}
	for name := range m {
		if strings.Contains(name, "token=") || strings.Contains(name, "csat_nope") {
			t.Errorf("a raw URL leaked into a label: %s", name)
		}
	}

	// An email the SMTP server refuses is counted as failed.
	s.SMTP.SetFail(func(string) bool { return true })
	intake(t, s, key, "c3", "three@example.com")
	testenv.Eventually(t, 15*time.Second, "failed email counted", func() bool {
		return scrape(t, s)[`csat_emails_total{result="failed"}`] >= 1
	})
}

// syncBuffer is a bytes.Buffer the service's goroutines can write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// requestLines returns the access log lines.
func requestLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestLog(t *testing.T) {
	var logs syncBuffer
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Log: &logs})
	tenantID, key := s.NewTenant(t, "Acme")

	r := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": "c1", "contact_email": "jane@example.com", "resolved_at": due(),
	}, "X-Request-ID", "req-abc.123")
	if r.Status != 201 || r.Header.Get("X-Request-ID") != "req-abc.123" {
		t.Fatalf("intake: %d, request id echoed as %q", r.Status, r.Header.Get("X-Request-ID"))
	}
	mail := s.SMTP.WaitFor(t, "jane@example.com", 1, 15*time.Second)[0]
	var rate string
	for _, l := range mail.Links() {
		if strings.Contains(l, "rating=5") {
			rate = l
		}
	}
	u, _ := url.Parse(rate)
	token := u.Query().Get("token")
	for _, bad := range []string{"has space", strings.Repeat("x", 65), `<script>"`} {
		r := s.Do(t, "GET", rate, "", nil, "X-Request-ID", bad)
		if got := r.Header.Get("X-Request-ID"); got == "" || got == bad {
			t.Fatalf("unsafe request id %q answered with %q", bad, got)
		}
	}
	if r := s.Do(t, "GET", "/api/v1/csat/config", "", nil); r.Status != 401 || r.Header.Get("X-Request-ID") == "" {
		t.Fatalf("unauthenticated: %d, id %q", r.Status, r.Header.Get("X-Request-ID"))
	}

	all := logs.String()
	for _, secret := range []string{key, token, "jane@example.com"} {
		if strings.Contains(all, secret) {
			t.Fatalf("the log holds a secret or address %q:\n%s", secret, all)
		}
	}
	var intakeLine, rateLine map[string]any
	for _, l := range requestLines(t, all) {
		switch {
		case l["request_id"] == "req-abc.123":
			intakeLine = l
		case l["route"] == "/api/v1/csat/rate" && rateLine == nil:
			rateLine = l
		}
	}
	if intakeLine == nil || rateLine == nil {
		t.Fatalf("missing access log lines:\n%s", all)
	}
	if intakeLine["tenant_id"] != tenantID || intakeLine["route"] != "/api/v1/csat/surveys" ||
		intakeLine["method"] != "POST" || intakeLine["status"] != 201.0 {
		t.Fatalf("intake log line: %v", intakeLine)
	}
	if _, ok := intakeLine["duration_ms"].(float64); !ok {
		t.Fatalf("no duration: %v", intakeLine)
	}
	if _, ok := rateLine["tenant_id"]; ok || rateLine["status"] != 200.0 {
		t.Fatalf("public rate link log line: %v", rateLine)
	}
}

func TestLogHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(ops.LogHandler{Handler: slog.NewJSONHandler(&buf, nil)}).With("component", "test")
	var seen string
	h := ops.HTTP{}.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = ops.RequestID(r.Context())
		log.ErrorContext(r.Context(), "internal error", "err", "boom")
	}))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-Request-ID", "abc-9")
	h.ServeHTTP(httptest.NewRecorder(), req)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if seen != "abc-9" || line["request_id"] != "abc-9" || line["component"] != "test" {
		t.Fatalf("request id in context %q, log line %v", seen, line)
	}
}

// startRedis runs a private redis-server on a spare port.
func startRedis(t *testing.T) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	testenv.Eventually(t, 5*time.Second, "private redis", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, stop
}

func TestReadinessWhenRedisStops(t *testing.T) {
	addr, stopRedis := startRedis(t)
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Role: "api",
		Env: map[string]string{"REDIS_URL": fmt.Sprintf("redis://%s/0", addr)}})
	if r := s.Do(t, "GET", "/readyz", "", nil); r.Status != 200 || r.Map(t)["status"] != "ready" {
		t.Fatalf("readyz with redis up: %d %s", r.Status, r.Body)
	}
	stopRedis()
	r := s.Do(t, "GET", "/readyz", "", nil)
	checks, _ := r.Map(t)["checks"].(map[string]any)
	if r.Status != 503 || checks["redis"] != "down" || checks["postgres"] != "ok" {
		t.Fatalf("readyz with redis down: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz with redis down: %d", r.Status)
	}
}

func TestShutdownFinishesInFlightTask(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"SHUTDOWN_TIMEOUT": "10s"}})
	tenantID, key := s.NewTenant(t, "Acme")
	release := s.SMTP.Block()
	defer release(true)
	id := intake(t, s, key, "c1", "slow@example.com")
	testenv.Eventually(t, 15*time.Second, "send in flight", func() bool { return s.SMTP.Waiting() == 1 })

	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	// The HTTP server stops accepting while the task runs on.
	testenv.Eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-stopped:
		t.Fatal("stopped before the in-flight send finished")
	case <-time.After(300 * time.Millisecond):
	}
	release(true)
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if n := len(s.SMTP.To("slow@example.com")); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
	sv := loadSurvey(t, s.DSN, tenantID, id)
	if sv.Status != db.StatusSent {
		t.Fatalf("survey is %s after a finished send", sv.Status)
	}
}

// TestShutdownBeforeHandoffRequeues: a worker stops while its send waits on
// the SMTP server before the message went out. The send is abandoned, its
// claim given back and its task requeued; the next worker sends it, once.
func TestShutdownBeforeHandoffRequeues(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"SHUTDOWN_TIMEOUT": "1s"}})
	tenantID, key := s.NewTenant(t, "Acme")
	release := s.SMTP.BlockRcpt()
	id := intake(t, s, key, "c1", "stuck@example.com")
	testenv.Eventually(t, 15*time.Second, "send in flight", func() bool { return s.SMTP.Waiting() == 1 })
	start := time.Now()
	s.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s with SHUTDOWN_TIMEOUT=1s", d)
	}
	release(false)
	sv := loadSurvey(t, s.DSN, tenantID, id)
	if sv.Status != db.StatusPending || sv.ClaimedAt != nil || sv.HandedAt != nil {
		t.Fatalf("abandoned send left the survey %s, claimed %v, handed %v", sv.Status, sv.ClaimedAt, sv.HandedAt)
	}
	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	info, err := insp.GetTaskInfo("critical", "send:"+tenantID+":"+id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("the send task was not put back: %+v %v", info, err)
	}

	next := testenv.StartService(t, testenv.Options{RedisDB: redisDB, DSN: s.DSN, SMTP: s.SMTP})
	next.SMTP.WaitFor(t, "stuck@example.com", 1, 15*time.Second)
	testenv.Eventually(t, 5*time.Second, "sent", func() bool { return loadSurvey(t, s.DSN, tenantID, id).Status == db.StatusSent })
	next.Stop()
	if n := len(s.SMTP.To("stuck@example.com")); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
}

// TestShutdownAfterHandoffNeverRepeats: a worker stops while the SMTP server
// holds the whole message without answering. The message was handed over
// (the server may deliver it), so the survey counts as sent and the next
// worker, running the requeued task, sends nothing again.
func TestShutdownAfterHandoffNeverRepeats(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"SHUTDOWN_TIMEOUT": "1s"}})
	tenantID, key := s.NewTenant(t, "Acme")
	release := s.SMTP.Block()
	id := intake(t, s, key, "c1", "held@example.com")
	testenv.Eventually(t, 15*time.Second, "send in flight", func() bool { return s.SMTP.Waiting() == 1 })
	s.Stop()
	release(true) // the server delivers what it had, though the client left
	testenv.Eventually(t, 5*time.Second, "the held email delivered", func() bool { return len(s.SMTP.To("held@example.com")) == 1 })
	if sv := loadSurvey(t, s.DSN, tenantID, id); sv.Status != db.StatusSent || sv.SentAt == nil || sv.HandedAt == nil {
		t.Fatalf("handed-over survey is %s (sent_at %v)", sv.Status, sv.SentAt)
	}

	next := testenv.StartService(t, testenv.Options{RedisDB: redisDB, DSN: s.DSN, SMTP: s.SMTP})
	insp := asynq.NewInspectorFromRedisClient(next.Redis)
	testenv.Eventually(t, 15*time.Second, "the requeued task done", func() bool {
		_, err := insp.GetTaskInfo("critical", "send:"+tenantID+":"+id)
		return errors.Is(err, asynq.ErrTaskNotFound)
	})
	next.Stop()
	if n := len(s.SMTP.To("held@example.com")); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
}

func loadSurvey(t *testing.T, dsn, tenantID, id string) *db.Survey {
	t.Helper()
	bdb, err := db.Open(dsn, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	sv, err := db.GetSurvey(context.Background(), bdb, tenantID, id)
	if err != nil {
		t.Fatalf("load survey: %v", err)
	}
	return sv
}

// BenchmarkHTTPMiddleware is the cost the request id, access log and
// metrics add to every request (compare "observed" with "bare").
func BenchmarkHTTPMiddleware(b *testing.B) {
	for _, observed := range []bool{false, true} {
		name := "bare"
		r := chi.NewRouter()
		if observed {
			name = "observed"
			log := slog.New(ops.LogHandler{Handler: slog.NewJSONHandler(io.Discard, nil)})
			r.Use(ops.HTTP{Log: log, Metrics: metrics.New()}.Middleware)
		}
		r.Get("/api/v1/csat/surveys/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
		req := httptest.NewRequest("GET", "/api/v1/csat/surveys/csat_1", nil)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
