package survey

import (
	"context"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
)

// The per-status counters and the analytics rollups are folded from a log
// of deltas that every change of a survey appends in its own transaction
// (see the migration 20260110000001_stat_deltas). Reads add the deltas not
// folded yet, so folding is for speed, never for correctness: each process
// folds the tenants it wrote to within DefaultFoldInterval, and the sweep
// folds every tenant (what a process that died left behind).

// DefaultFoldInterval is how long deltas wait at most, in a running
// process, before they are folded (ANALYTICS_FOLD_INTERVAL's default).
const DefaultFoldInterval = 250 * time.Millisecond

// foldQueue holds the tenants this process wrote to since the last fold.
type foldQueue struct {
	mu      sync.Mutex
	tenants map[string]struct{}
}

func (q *foldQueue) add(tenantID string) {
	q.mu.Lock()
	if q.tenants == nil {
		q.tenants = map[string]struct{}{}
	}
	q.tenants[tenantID] = struct{}{}
	q.mu.Unlock()
}

func (q *foldQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make([]string, 0, len(q.tenants))
	for id := range q.tenants {
		ids = append(ids, id)
	}
	clear(q.tenants)
	return ids
}

// FoldStats moves the tenant's pending rollup deltas into the rollups.
func (s *Service) FoldStats(ctx context.Context, tenantID string) error {
	return s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) error {
		_, err := db.FoldStats(ctx, idb, tenantID)
		return err
	})
}

// RunFolds folds, every interval, the tenants this process wrote to, until
// ctx ends; then once more, briefly, so a clean stop leaves nothing behind.
func (s *Service) RunFolds(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultFoldInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			s.foldPending(last)
			return
		case <-t.C:
			s.foldPending(ctx)
		}
	}
}

func (s *Service) foldPending(ctx context.Context) {
	for _, id := range s.folds.take() {
		if err := s.FoldStats(ctx, id); err != nil {
			if ctx.Err() == nil {
				s.log().Warn("fold analytics deltas; retried next round", "tenant_id", id, "err", err)
			}
			s.folds.add(id)
		}
	}
}
