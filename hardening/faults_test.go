package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// The fault scenarios run the real csat binary (built once per test
// binary) against the real Postgres and Redis. Postgres is shared by
// everyone on a machine, so it is never restarted: an outage is a TCP proxy
// between the service and Postgres that the test cuts and restores.
// FAULTS_SCALE multiplies the sizes (`make faults` sets it; `make test`
// runs scale 1).

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func csatBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "csat-faults-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "csat")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/csat/csat/cmd/csat").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func scale() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("FAULTS_SCALE"), &n); err != nil || n < 1 {
		return 1
	}
	return n
}

// proxy forwards TCP connections to Postgres until cut.
type proxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close() // Postgres is "gone": the connection dies at once
			continue
		}
		go p.pipe(c)
	}
}

func (p *proxy) pipe(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

// cut drops every open connection and refuses new ones.
func (p *proxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
}

func (p *proxy) restore() { p.down.Store(false) }

// process is a running csat binary.
type process struct {
	cmd *exec.Cmd
	url string
	log bytes.Buffer
}

func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &process{url: "http://" + addr}
	p.cmd = exec.Command(csatBinary(t), "serve")
	p.cmd.Env = append(os.Environ(), "HTTP_ADDR="+addr, "LOG_LEVEL=warn", "CSAT_AUTO_MIGRATE=false", "SHUTDOWN_TIMEOUT=2s")
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("process log:\n%s", p.log.String())
		}
	})
	testenv.Eventually(t, 30*time.Second, "csat serve answers /healthz", func() bool {
		res, err := http.Get(p.url + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	return p
}

// TestPostgresOutageUnderIntake: intake load while Postgres goes away and
// comes back. While it is away, requests fail with 503 and a JSON error;
// after, they succeed; every intake answered 201 is stored.
func TestPostgresOutageUnderIntake(t *testing.T) {
	dsn, appDB := testenv.DB(t)
	redisURL, _ := testenv.Redis(t, redisDBFaults)
	ctx := context.Background()
	st := &tenants.Store{DB: appDB}
	ten, err := st.CreateTenant(ctx, "Faults")
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.CreateKey(ctx, ten.ID, []string{tenants.ScopeWrite, tenants.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(db.AppDSN(dsn))
	px := newProxy(t, u.Host)
	u.Host = px.ln.Addr().String()
	proc := startProcess(t, map[string]string{
		"DATABASE_URL": dsn, "APP_DATABASE_URL": u.String(), "REDIS_URL": redisURL, "CSAT_ROLE": "api", "DB_MAX_CONNS": "8",
	})

	var (
		mu       sync.Mutex
		acked    []string
		statuses = map[int]int{}
		bad      []string
		seq      atomic.Int64
	)
	client := &http.Client{Timeout: 10 * time.Second}
	load := func(stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			conv := fmt.Sprintf("outage-%d", seq.Add(1))
			body, _ := json.Marshal(map[string]string{"conversation_id": conv, "contact_email": "o@example.com"})
			req, _ := http.NewRequest("POST", proc.url+"/api/v1/csat/surveys", bytes.NewReader(body))
			req.Header.Set("X-API-Key", key.Key)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				mu.Lock()
				bad = append(bad, "transport: "+err.Error())
				mu.Unlock()
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var e struct {
				ID    string
				Error struct{ Code string }
			}
			_ = json.Unmarshal(b, &e)
			mu.Lock()
			statuses[res.StatusCode]++
			switch {
			case res.StatusCode == 201:
				acked = append(acked, e.ID)
			case res.StatusCode == 503 && e.Error.Code == "unavailable" && res.Header.Get("Content-Type") != "":
			case res.StatusCode == 429:
			default:
				bad = append(bad, fmt.Sprintf("%d %s", res.StatusCode, b))
			}
			mu.Unlock()
		}
	}
	phase := time.Duration(scale()) * time.Second
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); load(stop) }()
	}
	time.Sleep(phase)
	px.cut()
	time.Sleep(2 * phase)
	mu.Lock()
	ackedBeforeRestore := len(acked)
	mu.Unlock()
	px.restore()
	time.Sleep(2 * phase)
	close(stop)
	wg.Wait()

	t.Logf("statuses: %v, acknowledged %d", statuses, len(acked))
	if statuses[503] == 0 {
		t.Error("no request saw the outage (503)")
	}
	if len(acked) <= ackedBeforeRestore {
		t.Error("no intake succeeded after Postgres came back")
	}
	for i, b := range bad {
		if i < 10 {
			t.Errorf("unexpected answer: %s", b)
		}
	}
	// Every acknowledged intake is stored.
	admin := testenv.Admin(t, dsn)
	var stored int
	if len(acked) == 0 {
		t.Fatal("no intake was acknowledged")
	}
	if err := admin.NewRaw("SELECT count(*) FROM surveys WHERE id IN (?)", bunList(acked)).Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(acked) {
		t.Errorf("%d intakes answered 201, %d stored", len(acked), stored)
	}
}

func bunList(ids []string) any { return bun.List(ids) }

// TestWorkerKilledMidWave: surveys due, a worker process sends part of the
// wave and is killed with SIGKILL, a new worker finishes it. Every survey
// is emailed, none is lost, and a repeat is down to one narrow case: the
// send records each email in a transaction that commits right after the
// message's final "." is written (see mail.Handoff), so a kill before that
// leaves no record and no email, and a kill after it leaves the record the
// next worker trusts. Only a kill between those two writes (microseconds
// apart, unless the OS deschedules the worker right there) repeats the
// email in flight: at most one per kill here, in practice almost never
// (one repeat in 20 kills while this was measured). The new worker takes
// over the killed one's claims after SEND_CLAIM_LEASE. With handoff groups
// (SEND_HANDOFF_GROUP) the gap runs from a group's first "." to its
// commit, and a kill in it repeats at most the group.
func TestWorkerKilledMidWave(t *testing.T) {
	for _, group := range []int{1, 4} {
		t.Run(fmt.Sprintf("group %d", group), func(t *testing.T) { workerKilledMidWave(t, group) })
	}
}

func workerKilledMidWave(t *testing.T, group int) {
	n := 200 * scale()
	dsn, appDB := testenv.DB(t)
	redisURL, _ := testenv.Redis(t, redisDBFaults)
	smtp := testenv.SMTP(t)
	ctx := context.Background()
	ten, err := (&tenants.Store{DB: appDB}).CreateTenant(ctx, "Wave")
	if err != nil {
		t.Fatal(err)
	}
	admin := testenv.Admin(t, dsn)
	if _, err := admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for)
		SELECT ?, 'csat_wave' || lpad(i::text, 21, '0'), 'wave-' || i, 'wave-' || i || '@example.com', 'pending', now(), now() - interval '1 second'
		FROM generate_series(1, ?) i`, ten.ID, n).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": dsn, "REDIS_URL": redisURL, "SMTP_URL": smtp.URL(), "CSAT_ROLE": "worker",
		"CSAT_RECONCILE_INTERVAL": "1s", "WORKER_CONCURRENCY": "4", "SEND_HANDOFF_GROUP": strconv.Itoa(group)}
	if scale() == 1 {
		env["SEND_CLAIM_LEASE"] = "5s" // make test: take over sooner; make faults keeps the default
	}
	sent := func() int {
		var c int
		_ = admin.NewRaw("SELECT count(*) FROM surveys WHERE status = 'sent'").Scan(ctx, &c)
		return c
	}
	w1 := startProcess(t, env)
	testenv.Eventually(t, time.Minute, "a quarter of the wave sent", func() bool { return sent() >= n/4 })
	if err := w1.cmd.Process.Kill(); err != nil { // SIGKILL: no graceful shutdown
		t.Fatal(err)
	}
	_ = w1.cmd.Wait()
	t.Logf("killed the first worker after %d of %d sent", sent(), n)
	startProcess(t, env)
	start := time.Now()
	testenv.Eventually(t, 2*time.Minute, "the whole wave sent", func() bool { return sent() == n })
	t.Logf("the second worker finished the wave in %s", time.Since(start).Round(time.Second))
	perRecipient := map[string]int{}
	for _, m := range smtp.Messages() {
		for _, to := range m.To {
			perRecipient[to]++
		}
	}
	repeats := 0
	for i := 1; i <= n; i++ {
		switch c := perRecipient[fmt.Sprintf("wave-%d@example.com", i)]; {
		case c == 0:
			t.Errorf("wave-%d was marked sent but never emailed", i)
		case c > 1:
			repeats += c - 1
		}
	}
	t.Logf("%d emails for %d surveys, %d repeated", len(smtp.Messages()), n, repeats)
	if repeats > group {
		t.Errorf("%d emails repeated; one kill can repeat at most the %d between their final dots and their commit", repeats, group)
	}
}
