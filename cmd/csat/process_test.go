package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// This package's Redis database number (the process tests).
const redisDB = 13

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the csat binary once for the package's tests, with the
// race detector when the tests have it (its packages are then already
// compiled, so the build is mostly a link).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "csat-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "csat")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command(goBin, append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build csat: %v", buildErr)
	}
	return binPath
}

// proc is a running `csat serve`.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
	err  error // the exit status, once done is closed
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// baseEnv is the environment every process of a test shares.
func baseEnv(dsn, redisURL, smtpURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL":            dsn,
		"REDIS_URL":               redisURL,
		"SMTP_URL":                smtpURL,
		"CSAT_RECONCILE_INTERVAL": "1m",
		"SHUTDOWN_TIMEOUT":        "10s",
		"LOG_LEVEL":               "info",
		"RATE_LIMITS_ENABLED":     "false",
		"OPS_TOKEN":               "proc-ops-token",
	}
}

func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// start runs `csat serve` with env plus CSAT_ROLE=role and waits until it
// is ready; the test's end kills it if it still runs.
func start(t *testing.T, name, role string, env map[string]string) *proc {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	vars["CSAT_ROLE"], vars["HTTP_ADDR"] = role, addr
	if vars["PUBLIC_BASE_URL"] == "" {
		vars["PUBLIC_BASE_URL"] = "http://" + addr
	}
	p := &proc{name: name, url: "http://" + addr, logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), "serve")
	p.cmd.Env = environ(vars)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, p.err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready:\n%s", name, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still runs %s after SIGTERM:\n%s", p.name, within, p.logs.String())
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
	return 0
}

func (p *proc) get(t *testing.T, path string, header ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", p.url+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", p.name, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// metric reads one sample from the process's /metrics.
func (p *proc) metric(t *testing.T, sample string) float64 {
	t.Helper()
	status, body := p.get(t, "/metrics", "Authorization", "Bearer proc-ops-token")
	if status != 200 {
		t.Fatalf("%s /metrics: %d", p.name, status)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// cli runs an admin command of the binary and decodes its JSON output.
func cli(t *testing.T, env map[string]string, out any, args ...string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = environ(env)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("csat %v: %v", args, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("csat %v printed %q", args, b)
	}
}

// newKey creates a tenant and an API key through the CLI.
func newKey(t *testing.T, env map[string]string) (tenantID, key string) {
	t.Helper()
	var ten struct{ ID string }
	cli(t, env, &ten, "tenant", "create", "--name", "Acme")
	var k struct{ Key string }
	cli(t, env, &k, "apikey", "create", "--tenant", ten.ID)
	return ten.ID, k.Key
}

func intakeAt(t *testing.T, url, key, conv, email string) string {
	t.Helper()
	body := fmt.Sprintf(`{"conversation_id": %q, "contact_email": %q, "resolved_at": %q}`,
		conv, email, time.Now().Add(-2*time.Hour-time.Second).UTC().Format(time.RFC3339))
	req, _ := http.NewRequest("POST", url+"/api/v1/csat/surveys", strings.NewReader(body))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 201 {
		t.Fatalf("intake %s: %d %v", conv, res.StatusCode, err)
	}
	return out.ID
}

// countStatus counts the surveys in a status.
func countStatus(t *testing.T, dsn, status string) int {
	t.Helper()
	var n int
	if err := testenv.Admin(t, dsn).NewRaw("SELECT count(*) FROM surveys WHERE status = ?", status).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestProcessSplitRoles runs one api and two worker processes on one
// database and Redis: intake on the api, every email sent by a worker,
// exactly once, while both workers sweep every 300 ms.
func TestProcessSplitRoles(t *testing.T) {
	dsn, _ := testenv.DB(t)
	redisURL, _ := testenv.Redis(t, redisDB)
	smtp := testenv.SMTP(t)
	env := baseEnv(dsn, redisURL, smtp.URL())
	env["CSAT_RECONCILE_INTERVAL"] = "300ms"
	api := start(t, "api", "api", env)
	w1 := start(t, "worker-1", "worker", env)
	w2 := start(t, "worker-2", "worker", env)
	_, key := newKey(t, env)

	for _, w := range []*proc{w1, w2} {
		for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/csat/config": 404, "/s/x": 404} {
			if status, _ := w.get(t, path, "X-API-Key", key); status != want {
				t.Errorf("%s %s: %d, want %d", w.name, path, status, want)
			}
		}
		if status, _ := w.get(t, "/ops/asynq/", "Authorization", "Bearer proc-ops-token"); status != 404 {
			t.Errorf("%s serves asynqmon: %d", w.name, status)
		}
	}
	if status, _ := api.get(t, "/ops/asynq/api/queues", "Authorization", "Bearer proc-ops-token"); status != 200 {
		t.Errorf("api asynqmon: %d", status)
	}

	const n = 20
	for i := range n {
		intakeAt(t, api.url, key, fmt.Sprintf("conv-%d", i), fmt.Sprintf("p%d@example.com", i))
	}
	testenv.Eventually(t, 60*time.Second, "every survey sent", func() bool { return countStatus(t, dsn, db.StatusSent) == n })
	// Let both workers sweep a few more times: a duplicate would show.
	time.Sleep(time.Second) // a fixed window, nothing to poll for
	for i := range n {
		if got := len(smtp.To(fmt.Sprintf("p%d@example.com", i))); got != 1 {
			t.Errorf("survey %d: %d emails, want 1", i, got)
		}
	}
	// The metrics say who did what: the api scheduled, the workers sent.
	const sent = `csat_emails_total{result="sent"}`
	if got := api.metric(t, sent); got != 0 {
		t.Errorf("the api process sent %v emails", got)
	}
	if got := api.metric(t, `csat_surveys_total{event="scheduled"}`); got != n {
		t.Errorf("the api process scheduled %v surveys, want %d", got, n)
	}
	if a, b := w1.metric(t, sent), w2.metric(t, sent); a+b != n {
		t.Errorf("workers sent %v + %v emails, want %d", a, b, n)
	}
	for _, p := range []*proc{api, w1, w2} {
		if code := p.stop(t, 20*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", p.name, code)
		}
	}
}

// TestProcessGracefulStop sends SIGTERM to `csat serve` while a send is
// in flight: the process stops accepting, finishes the send and exits 0.
func TestProcessGracefulStop(t *testing.T) {
	dsn, _ := testenv.DB(t)
	redisURL, _ := testenv.Redis(t, redisDB)
	smtp := testenv.SMTP(t)
	env := baseEnv(dsn, redisURL, smtp.URL())
	p := start(t, "serve", "all", env)
	_, key := newKey(t, env)

	health := func() error {
		cmd := exec.Command(binary(t), "healthcheck")
		cmd.Env = environ(map[string]string{"HTTP_ADDR": strings.TrimPrefix(p.url, "http://")})
		return cmd.Run()
	}
	if err := health(); err != nil {
		t.Fatalf("csat healthcheck on a running server: %v", err)
	}

	release := smtp.Block()
	defer release(true)
	intakeAt(t, p.url, key, "slow", "slow@example.com")
	testenv.Eventually(t, 30*time.Second, "send in flight", func() bool { return smtp.Waiting() == 1 })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "listener closed", func() bool { return health() != nil })
	select {
	case <-p.done:
		t.Fatalf("exited with a send in flight: %v\n%s", p.err, p.logs.String())
	case <-time.After(300 * time.Millisecond):
	}
	release(true)
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.logs.String())
	}
	if got := len(smtp.To("slow@example.com")); got != 1 {
		t.Fatalf("%d emails, want 1", got)
	}
	if got := countStatus(t, dsn, db.StatusSent); got != 1 {
		t.Fatalf("%d surveys sent, want 1", got)
	}
	logs := p.logs.String()
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"stopped"`, `"route":"/api/v1/csat/surveys"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	// Every line is JSON (a race report or a stray print would not be),
	// and the API key never appears.
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
	if strings.Contains(logs, key) {
		t.Error("the API key is in the log")
	}
}

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{":8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9090", "http://127.0.0.1:9090/healthz"},
		{"[::]:9090", "http://127.0.0.1:9090/healthz"},
		{"127.0.0.2:81", "http://127.0.0.2:81/healthz"},
		{"[::1]:8080", "http://[::1]:8080/healthz"},
		{"8080", ""},
	} {
		got, err := healthURL(tc.addr)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("healthURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
}
