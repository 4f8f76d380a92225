package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/csat/csat/jobs"
	"github.com/csat/csat/testenv"
)

const redisDB = 4

// commandCounter counts the commands a Redis client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Surveys due in the same second, a few seconds ahead, share their
// tenant's task of that second: the first enqueues it, the rest of the
// second (an intake burst, a batch's expiries) skip Redis; another tenant
// or another second enqueues its own.
func TestDueTasksEnqueuedOncePerTenantAndSecond(t *testing.T) {
	_, rdb := testenv.Redis(t, redisDB)
	counter := &commandCounter{}
	rdb.AddHook(counter)
	c := &jobs.Client{Asynq: asynq.NewClientFromRedisClient(rdb)}
	ctx := context.Background()
	sec := time.Now().Add(time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		schedule func(tenant, id string, at time.Time) error
		queue    string
	}{
		{"send", func(tenant, id string, at time.Time) error { return c.ScheduleSend(ctx, tenant, id, at) }, jobs.QueueCritical},
		{"expire", func(tenant, id string, at time.Time) error { return c.ScheduleExpire(ctx, tenant, id, at) }, jobs.QueueDefault},
	} {
		// The first enqueue of a kind also loads asynq's script.
		if err := tc.schedule("ten_warm", "csat_w", sec); err != nil {
			t.Fatal(err)
		}
		before := counter.n.Load()
		for i := range 100 {
			at := sec.Add(time.Duration(i) * 5 * time.Millisecond)
			if err := tc.schedule("ten_a", "csat_x", at); err != nil {
				t.Fatal(err)
			}
		}
		if n := counter.n.Load() - before; n != 1 {
			t.Errorf("%s: %d Redis commands for 100 surveys due in one second, want 1", tc.name, n)
		}
		for _, other := range []struct {
			tenant string
			at     time.Time
		}{{"ten_b", sec}, {"ten_a", sec.Add(time.Second)}} {
			if err := tc.schedule(other.tenant, "csat_y", other.at); err != nil {
				t.Fatal(err)
			}
		}
		if n := counter.n.Load() - before; n != 3 {
			t.Errorf("%s: %d Redis commands in all with another tenant's and another second's, want 3", tc.name, n)
		}
		tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListScheduledTasks(tc.queue)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 4 {
			t.Errorf("%s: %d scheduled tasks, want 4 (with the warm-up's)", tc.name, len(tasks))
		}
	}
}
