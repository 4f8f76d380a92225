package survey

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
)

// Handoff batches: the emails a tenant's sends hold at the same moment
// (each with the whole message at the SMTP server, before its final ".")
// are recorded by one UPDATE in one transaction, committed once every one
// of them was released. A wave sent by twenty tasks at once then costs a
// transaction per batch of emails instead of one per email, and each email
// keeps its guarantee (Send): its record commits after its "." went out,
// or is taken back before the commit when the "." could not be written.
//
// A batch forms while the previous batch of the tenant runs its UPDATE:
// alone, an email is a batch of one and waits for nothing.

// maxHandoffBatch bounds a batch: its commit waits for its slowest email.
const maxHandoffBatch = 64

// handoffTimeout bounds a batch's transaction: longer than an SMTP
// exchange's deadline (15 s), so a member that stalls cannot hold the
// others' records (and their rows' locks) open for longer.
const handoffTimeout = 20 * time.Second

// handoffLanes holds the tenants' forming batches.
type handoffLanes struct {
	mu    sync.Mutex
	lanes map[string]*handoffLane
}

type handoffLane struct {
	forming *handoffBatch // taking members; nil when none is
	users   int           // members joined and not yet past their batch's UPDATE
	update  sync.Mutex    // held by the batch whose UPDATE is running
}

// handoffMember is one email in a batch.
type handoffMember struct {
	h   db.Handed  // the record (ExpiresAt is set by the batch)
	was db.Handed  // what an undo restores
	cfg *db.Config // the tenant's settings, for the link's expiry
	b   *handoffBatch
	ok  bool // recorded by the batch's UPDATE
}

// handoffBatch is the members recorded by one transaction.
type handoffBatch struct {
	members []*handoffMember
	held    chan struct{} // closed once the UPDATE ran: err and ok are set
	err     error

	ctx    context.Context // the transaction's
	cancel context.CancelFunc
	finish func(undone []db.Handed) error // commits, taking back the undone

	recorded int // members the UPDATE recorded

	mu        sync.Mutex
	open      int // recorded members not yet released or undone
	undone    []db.Handed
	done      chan struct{} // closed once finish ran: commitErr is set
	commitErr error
}

// join adds m to the tenant's forming batch, or starts one, and returns
// once the batch's UPDATE ran: nil when m is recorded, errClaimLost when
// its claim is no longer ours. The member that starts a batch runs it
// (run sets err, ok, open, and finish when open > 0) as soon as the
// tenant's previous batch finished its UPDATE.
func (g *handoffLanes) join(tenantID string, m *handoffMember, run func(*handoffBatch)) error {
	g.mu.Lock()
	if g.lanes == nil {
		g.lanes = map[string]*handoffLane{}
	}
	l := g.lanes[tenantID]
	if l == nil {
		l = &handoffLane{}
		g.lanes[tenantID] = l
	}
	l.users++
	b, lead := l.forming, false
	if b == nil || len(b.members) == maxHandoffBatch {
		b, lead = &handoffBatch{held: make(chan struct{}), done: make(chan struct{})}, true
		l.forming = b
	}
	m.b = b
	b.members = append(b.members, m)
	g.mu.Unlock()

	if lead {
		l.update.Lock()
		g.mu.Lock()
		if l.forming == b {
			l.forming = nil // closed: later members start the next batch
		}
		g.mu.Unlock()
		run(b)
		close(b.held)
		l.update.Unlock()
	}
	<-b.held
	g.mu.Lock()
	if l.users--; l.users == 0 {
		delete(g.lanes, tenantID)
	}
	g.mu.Unlock()
	switch {
	case b.err != nil:
		return b.err
	case !m.ok:
		return errClaimLost
	}
	return nil
}

// report says whether a recorded member's final "." went out. The last
// report finishes the batch: it commits, taking back the records of the
// members whose "." did not go out (or rolls back when none did). A
// released member waits for that commit and returns its error; an undone
// one returns at once.
func (b *handoffBatch) report(m *handoffMember, released bool) error {
	b.mu.Lock()
	if !released {
		b.undone = append(b.undone, m.was)
	}
	b.open--
	last := b.open == 0
	undone := b.undone
	b.mu.Unlock()
	if last {
		b.commitErr = b.finish(undone)
		close(b.done)
		b.cancel() // after done: a waiter that sees the context end checks done
	}
	if !released {
		return nil
	}
	select {
	case <-b.done:
	case <-b.ctx.Done():
		select {
		case <-b.done:
		default:
			return fmt.Errorf("handoff batch not committed: %w", b.ctx.Err())
		}
	}
	return b.commitErr
}

// runHandoffs is a batch's run: it records the members' handoffs in a new
// transaction of the tenant (ctx carries the binding), which the batch's
// last report commits. The transaction does not end with the leader's
// task: the other members' emails ride on it.
func (s *Service) runHandoffs(ctx context.Context, tenantID string, b *handoffBatch) {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoffTimeout)
	now := s.now()
	hs := make([]db.Handed, len(b.members))
	for i, m := range b.members {
		exp := ExpiresAt(now, configOf(m.cfg))
		m.h.ExpiresAt = &exp
		hs[i] = m.h
	}
	var tx bun.Tx
	var ids []string
	err := func() (err error) {
		if tx, err = s.DB.BeginTx(tctx, nil); err != nil {
			return fmt.Errorf("begin handoff: %w", err)
		}
		if ids, err = db.Handoff(tctx, tx, tenantID, now, hs); err != nil {
			_ = tx.Rollback()
		}
		return err
	}()
	if err != nil {
		cancel()
		b.err = err
		return
	}
	recorded := make(map[string]bool, len(ids))
	for _, id := range ids {
		recorded[id] = true
	}
	for _, m := range b.members {
		if m.ok = recorded[m.h.ID]; m.ok {
			b.open++
		}
	}
	b.recorded = b.open
	if b.open == 0 {
		_ = tx.Rollback()
		cancel()
		return
	}
	b.ctx, b.cancel = tctx, cancel
	b.finish = func(undone []db.Handed) error {
		if len(undone) == b.recorded {
			return tx.Rollback()
		}
		// The undo rides with the COMMIT: one message.
		if err := db.UndoHandoffs(db.WithDeferred(tctx), tx, tenantID, undone); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
}
