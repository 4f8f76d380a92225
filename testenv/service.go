package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/csat/csat/app"
	"github.com/csat/csat/ops"
	"github.com/csat/csat/tenants"
)

// Options shape a test service.
type Options struct {
	DSN       string // share a database with another service; empty: a fresh one
	RedisDB   int    // the test package's Redis database number
	Role      string
	Reconcile time.Duration
	SMTP      *SMTPServer // share an SMTP server; nil: a fresh one
	Env       map[string]string
	Now       func() time.Time // the survey service's clock; nil: the real one
	Log       io.Writer        // receives the service's JSON logs at info level; nil: TEST_LOG decides
}

// Service is the whole service running in-process on a loopback port.
type Service struct {
	URL   string
	DSN   string   // the owner's DSN (DATABASE_URL)
	Admin *bun.DB  // superuser connection for fixtures and assertions (no RLS)
	App   *app.App // App.DB is the service's csat_app connection (RLS applies)
	SMTP  *SMTPServer
	Redis *redis.Client
	stop  context.CancelFunc
	done  chan error
}

// StartService runs app.App with its HTTP server, worker and sweep, and
// stops it when the test ends.
func StartService(tb testing.TB, o Options) *Service {
	tb.Helper()
	s := &Service{DSN: o.DSN, SMTP: o.SMTP}
	if s.DSN == "" {
		s.DSN, _ = DB(tb)
	}
	s.Admin = Admin(tb, s.DSN)
	if s.SMTP == nil {
		s.SMTP = SMTP(tb)
	}
	// A second service on a shared database shares its Redis too: flush
	// only for the first.
	var redisURL string
	if o.DSN == "" {
		redisURL, s.Redis = Redis(tb, o.RedisDB)
	} else {
		redisURL, s.Redis = RedisNoFlush(tb, o.RedisDB)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	s.URL = "http://" + ln.Addr().String()
	vars := map[string]string{
		"DATABASE_URL":            s.DSN,
		"REDIS_URL":               redisURL,
		"SMTP_URL":                s.SMTP.URL(),
		"PUBLIC_BASE_URL":         s.URL,
		"CSAT_RECONCILE_INTERVAL": "1m",
		"SHUTDOWN_TIMEOUT":        "5s",
		"CSAT_ROLE":               o.Role,
		"LOG_LEVEL":               "warn",
		// Tests make many requests per key; the rate-limit tests turn
		// limits on with Env.
		"RATE_LIMITS_ENABLED": "false",
	}
	if o.Reconcile > 0 {
		vars["CSAT_RECONCILE_INTERVAL"] = o.Reconcile.String()
	}
	for k, v := range o.Env {
		vars[k] = v
	}
	cfg, err := app.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	var logOut io.Writer = io.Discard
	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		logOut = os.Stderr
	}
	if o.Log != nil {
		logOut, level = o.Log, slog.LevelInfo
	}
	log := slog.New(ops.LogHandler{Handler: slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})})
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		tb.Fatalf("start app: %v", err)
	}
	if o.Now != nil {
		a.Svc.Now = o.Now
	}
	// The email leaves inside the send's transaction, just before it
	// commits: this lets SMTP.WaitFor also wait for the commit.
	a.Svc.Events = append(a.Svc.Events, sentWatch{s.SMTP})
	s.SMTP.mu.Lock()
	s.SMTP.watched = true
	s.SMTP.mu.Unlock()
	s.App, s.stop, s.done = a, cancel, make(chan error, 1)
	go func() { s.done <- a.Serve(ctx, ln) }()
	tb.Cleanup(s.Stop)
	return s
}

// Stop shuts the service down gracefully; safe to call twice.
func (s *Service) Stop() {
	if s.stop == nil {
		return
	}
	s.stop()
	<-s.done
	s.App.Close()
	s.stop = nil
}

// NewTenant creates a tenant and an API key with the given scopes (all
// three documented scopes when none are given).
func (s *Service) NewTenant(tb testing.TB, name string, scopes ...string) (tenantID, key string) {
	tb.Helper()
	if len(scopes) == 0 {
		scopes = []string{tenants.ScopeRead, tenants.ScopeWrite, tenants.ScopeConfigWrite}
	}
	ctx := context.Background()
	t, err := s.App.Tenants.CreateTenant(ctx, name)
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	k, err := s.App.Tenants.CreateKey(ctx, t.ID, scopes)
	if err != nil {
		tb.Fatalf("create key: %v", err)
	}
	return t.ID, k.Key
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("response (%d) is not JSON: %v\n%s", r.Status, err, r.Body)
	}
}

// Map decodes the body as a JSON object.
func (r Response) Map(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	r.JSON(tb, &m)
	return m
}

// Do sends a request with an optional API key and body (a string is sent
// as is, anything else as JSON).
func (s *Service) Do(tb testing.TB, method, path, key string, body any, headers ...string) Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = s.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatalf("request: %v", err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}
