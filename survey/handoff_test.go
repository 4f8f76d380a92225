package survey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/db"
)

// TestHandoffCommitIsDurableUnlessAsync: SEND_ASYNC_HANDOFF decides whether
// the handoff transaction's statements carry WithAsyncCommit (whose effect
// on Postgres db's TestAsyncCommitLastsOneTransaction checks); a Service
// left at its zero value commits durably.
func TestHandoffCommitIsDurableUnlessAsync(t *testing.T) {
	bound := db.WithTenant(context.Background(), "ten_x")
	for _, async := range []bool{false, true} {
		s := &Service{AsyncHandoff: async}
		ctx := s.handoffContext(bound)
		if got := db.AsyncCommit(ctx); got != async {
			t.Errorf("AsyncHandoff=%v: async commit %v", async, got)
		}
		if id, _ := db.BoundTenant(ctx); id != "ten_x" {
			t.Errorf("AsyncHandoff=%v: the handoff lost its tenant binding (%q)", async, id)
		}
	}
}

// fakeRun is a batch run without a database: it records the members whose
// id is not in lost, and its finish stores what it was asked to take back.
type fakeRun struct {
	mu      sync.Mutex
	batches [][]string // member ids, per run
	undone  [][]string // per finish
	gate    chan struct{}
	lost    map[string]bool
	fail    error // the commit's error
}

func (f *fakeRun) run(b *handoffBatch) {
	if f.gate != nil {
		<-f.gate
	}
	var ids []string
	for _, m := range b.members {
		ids = append(ids, m.h.ID)
		if m.ok = !f.lost[m.h.ID]; m.ok {
			b.open++
		}
	}
	f.mu.Lock()
	f.batches = append(f.batches, ids)
	f.mu.Unlock()
	b.recorded = b.open
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.finish = func(undone []db.Handed) error {
		var u []string
		for _, h := range undone {
			u = append(u, h.ID)
		}
		f.mu.Lock()
		f.undone = append(f.undone, u)
		f.mu.Unlock()
		return f.fail
	}
}

// Emails held while a batch runs its UPDATE form the next batch, recorded
// by one run; a member whose claim was lost is told so and left out of the
// commit; the last report commits, taking back the undone members, and
// every released member gets the commit's outcome.
func TestHandoffBatchesFormWhileOneRuns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lost     string
		undo     string
		fail     error
		undone   []string
		wantLost int
		wantErr  bool
	}{
		{name: "all released", undone: nil},
		{name: "one undone", undo: "m3", undone: []string{"m3"}},
		{name: "one lost", lost: "m2", undone: nil, wantLost: 1},
		{name: "commit fails", fail: errors.New("connection reset"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g handoffLanes
			f := &fakeRun{gate: make(chan struct{}), lost: map[string]bool{tc.lost: tc.lost != ""}, fail: tc.fail}
			first := make(chan error, 1)
			m0 := &handoffMember{h: db.Handed{ID: "m0"}}
			go func() { first <- g.join("ten_1", m0, f.run) }()
			// m0's batch is running (held at the gate): the next members
			// gather into one batch behind it.
			waitFor(t, func() bool {
				g.mu.Lock()
				defer g.mu.Unlock()
				return g.lanes["ten_1"] != nil && g.lanes["ten_1"].forming == nil
			})
			ms := make([]*handoffMember, 5)
			errc := make(chan error, len(ms))
			for i := range ms {
				ms[i] = &handoffMember{h: db.Handed{ID: fmt.Sprintf("m%d", i+1)}, was: db.Handed{ID: fmt.Sprintf("m%d", i+1)}}
				go func(m *handoffMember) {
					if err := g.join("ten_1", m, f.run); err != nil {
						errc <- err
						return
					}
					errc <- m.b.report(m, m.h.ID != tc.undo)
				}(ms[i])
			}
			waitFor(t, func() bool {
				g.mu.Lock()
				defer g.mu.Unlock()
				l := g.lanes["ten_1"]
				return l != nil && l.forming != nil && len(l.forming.members) == len(ms)
			})
			close(f.gate)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if err := m0.b.report(m0, true); (err != nil) != tc.wantErr {
				t.Fatalf("first batch's commit: %v", err)
			}
			var lost, failed int
			for range ms {
				switch err := <-errc; {
				case errors.Is(err, errClaimLost):
					lost++
				case err != nil:
					failed++
				}
			}
			if lost != tc.wantLost {
				t.Errorf("%d members told their claim was lost, want %d", lost, tc.wantLost)
			}
			if tc.wantErr && failed != len(ms)-len(tc.undone) || !tc.wantErr && failed != 0 {
				t.Errorf("%d members failed", failed)
			}
			if len(f.batches) != 2 || len(f.batches[0]) != 1 || len(f.batches[1]) != len(ms) {
				t.Fatalf("batches %v, want [m0] then the five others together", f.batches)
			}
			if len(f.undone) != 2 || !slices.Equal(f.undone[1], tc.undone) {
				t.Fatalf("taken back %v, want %v in the second batch", f.undone, tc.undone)
			}
			if len(g.lanes) != 0 {
				t.Fatalf("lanes left behind: %v", g.lanes)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
