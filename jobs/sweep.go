package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/csat/csat/secret"
	"github.com/csat/csat/survey"
)

// Sweeper runs survey.Service.Sweep every Interval. Several workers may run
// one each: a Redis lock lets one sweep at a time (the work is idempotent,
// the lock only saves duplicate effort), and if Redis is down the sweep
// still runs, since it only reads Postgres and enqueues idempotently.
type Sweeper struct {
	Svc      *survey.Service
	Redis    redis.UniversalClient
	Interval time.Duration
	Log      *slog.Logger
	OnRun    func(res survey.SweepResult, err error) // metrics; may be nil
}

const sweepLockKey = "csat:sweep:lock"

// Run sweeps once at start and then every Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		s.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce sweeps once if no other worker holds the lock.
func (s *Sweeper) RunOnce(ctx context.Context) {
	token := secret.Token(12)
	ok, err := s.Redis.SetNX(ctx, sweepLockKey, token, s.Interval).Result()
	if err == nil && !ok {
		return // another worker sweeps this round
	}
	if err == nil {
		defer s.Redis.Eval(context.WithoutCancel(ctx),
			`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`,
			[]string{sweepLockKey}, token)
	}
	// The horizon covers the next round, so tasks lost from Redis are back
	// in the queue before they are due.
	res, err := s.Svc.Sweep(ctx, s.Interval+5*time.Second)
	if s.OnRun != nil {
		s.OnRun(res, err)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Error("sweep failed", "err", err)
		}
		return
	}
	if res.Enqueued > 0 || res.Expired > 0 {
		s.Log.Info("sweep", "tenants", res.Tenants, "enqueued", res.Enqueued, "expired", res.Expired)
	}
}
