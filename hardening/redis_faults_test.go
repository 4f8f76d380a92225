package hardening

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// redisDBWaves is the Redis database of the Redis-loss scenarios and the
// mixed-traffic run: the flush scenario empties it, so no other test of
// this package may share it while it runs.
const redisDBWaves = 12

// wave is a batch of pending surveys, all due, for one tenant, each with
// its own recipient wave-<i>@example.com.
type wave struct {
	n     int
	admin *bun.DB
	smtp  *testenv.SMTPServer
	dsn   string
}

// newWave inserts n surveys due a second ago straight into Postgres (as
// an import would: nothing is queued in Redis, the sweep finds them).
func newWave(t *testing.T, n int) *wave {
	t.Helper()
	dsn, appDB := testenv.DB(t)
	ctx := context.Background()
	ten, err := (&tenants.Store{DB: appDB}).CreateTenant(ctx, "Wave")
	if err != nil {
		t.Fatal(err)
	}
	w := &wave{n: n, admin: testenv.Admin(t, dsn), smtp: testenv.SMTP(t), dsn: dsn}
	if _, err := w.admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for)
		SELECT ?, 'csat_wave' || lpad(i::text, 21, '0'), 'wave-' || i, 'wave-' || i || '@example.com', 'pending', now(), now() - interval '1 second'
		FROM generate_series(1, ?) i`, ten.ID, n).Exec(ctx); err != nil {
		t.Fatalf("insert the wave: %v", err)
	}
	return w
}

// workerEnv is the environment of a worker process sending the wave.
func (w *wave) workerEnv(redisURL string) map[string]string {
	return map[string]string{"DATABASE_URL": w.dsn, "REDIS_URL": redisURL, "SMTP_URL": w.smtp.URL(), "CSAT_ROLE": "worker",
		"CSAT_RECONCILE_INTERVAL": "1s", "WORKER_CONCURRENCY": "8", "DB_MAX_CONNS": "10"}
}

// sent counts the wave's surveys marked sent.
func (w *wave) sent(t *testing.T) int {
	t.Helper()
	var c int
	if err := w.admin.NewRaw("SELECT count(*) FROM surveys WHERE status = 'sent'").Scan(context.Background(), &c); err != nil {
		t.Logf("count sent: %v", err)
		return -1
	}
	return c
}

// checkExactlyOnce waits for the whole wave to be sent and then checks that
// the SMTP server got exactly one email per recipient: none missing (a
// task lost with Redis and never re-enqueued) and none twice (a task
// re-enqueued by the sweep while the first was sending).
func (w *wave) checkExactlyOnce(t *testing.T, within time.Duration) {
	t.Helper()
	start := time.Now()
	testenv.Eventually(t, within, "the whole wave sent", func() bool { return w.sent(t) == w.n })
	t.Logf("the rest of the wave took %s", time.Since(start).Round(100*time.Millisecond))
	perRecipient := map[string]int{}
	msgs := w.smtp.Messages()
	for _, m := range msgs {
		for _, to := range m.To {
			perRecipient[to]++
		}
	}
	missing, twice := 0, 0
	for i := 1; i <= w.n; i++ {
		switch c := perRecipient[fmt.Sprintf("wave-%d@example.com", i)]; {
		case c == 0:
			missing++
		case c > 1:
			twice++
		}
	}
	t.Logf("%d surveys, %d emails, %d recipients missing, %d emailed more than once", w.n, len(msgs), missing, twice)
	if missing > 0 || twice > 0 || len(msgs) != w.n {
		t.Errorf("want exactly one email per survey: %d emails for %d surveys, %d missing, %d twice", len(msgs), w.n, missing, twice)
	}
}

// waveSize is the number of surveys in a Redis-loss wave: enough that a
// quarter of it is a moment into the wave, not its end.
func waveSize() int { return 400 * scale() }

// TestRedisFlushedMidWave: a worker sends a wave of due surveys; when a
// quarter is sent its Redis database is flushed (every queued task, lease
// and the sweep lock gone at once). The sweep re-enqueues the rest from
// Postgres: every survey is sent, and the row lock of the send keeps a
// task re-enqueued while the original was still sending from emailing
// twice. The shared Redis is never flushed whole: the worker lives in
// its own database number, so FLUSHDB there is FLUSHALL for it.
func TestRedisFlushedMidWave(t *testing.T) {
	w := newWave(t, waveSize())
	redisURL, rdb := testenv.Redis(t, redisDBWaves)
	startProcess(t, w.workerEnv(redisURL))
	testenv.Eventually(t, time.Minute, "a quarter of the wave sent", func() bool { return w.sent(t) >= w.n/4 })
	ctx := context.Background()
	keys, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("redis dbsize: %v", err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flush redis: %v", err)
	}
	at := w.sent(t)
	t.Logf("flushed %d Redis keys with %d of %d sent", keys, at, w.n)
	if keys == 0 || at >= w.n {
		t.Fatalf("the flush came too late to lose anything (%d keys, %d of %d sent): make the wave larger", keys, at, w.n)
	}
	w.checkExactlyOnce(t, time.Minute)
}

// TestRedisRestartedMidWave: the worker's Redis is a private redis-server
// without persistence; when a quarter of the wave is sent it gets SIGKILL
// and comes back empty on the same port two seconds later. The worker
// rides out the outage (asynq and the sweep retry), the sweep re-enqueues
// what the restart lost, and every survey is emailed exactly once. The
// shared Redis is never restarted.
func TestRedisRestartedMidWave(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed: the restart scenario runs its own Redis")
	}
	w := newWave(t, waveSize())
	rs := startRedisServer(t, 0)
	startProcess(t, w.workerEnv(fmt.Sprintf("redis://127.0.0.1:%d/0", rs.port)))
	testenv.Eventually(t, time.Minute, "a quarter of the wave sent", func() bool { return w.sent(t) >= w.n/4 })
	rs.kill(t)
	at := w.sent(t)
	t.Logf("killed redis-server with %d of %d sent", at, w.n)
	if at >= w.n {
		t.Fatalf("the restart came after the wave (%d of %d sent): make the wave larger", at, w.n)
	}
	// The outage itself is the scenario: Redis stays away for a fixed time.
	time.Sleep(2 * time.Second)
	startRedisServer(t, rs.port)
	w.checkExactlyOnce(t, time.Minute)
}

// redisServer is a private redis-server the test owns.
type redisServer struct {
	port int
	cmd  *exec.Cmd
}

// startRedisServer runs redis-server without persistence on port (0: a
// free one) and waits until it answers PING; Cleanup kills it.
func startRedisServer(t *testing.T, port int) *redisServer {
	t.Helper()
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	rs := &redisServer{port: port}
	rs.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
	var log bytes.Buffer
	rs.cmd.Stdout, rs.cmd.Stderr = &log, &log
	if err := rs.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		if rs.cmd.ProcessState == nil {
			_ = rs.cmd.Process.Kill()
			_ = rs.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("redis-server on port %d:\n%s", port, log.String())
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	testenv.Eventually(t, 10*time.Second, "the private redis-server answers PING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err() == nil
	})
	return rs
}

// kill stops the server with SIGKILL (no shutdown, no save) and reaps it.
func (rs *redisServer) kill(t *testing.T) {
	t.Helper()
	if err := rs.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill redis-server: %v", err)
	}
	_ = rs.cmd.Wait()
}
