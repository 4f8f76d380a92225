package survey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/secret"
)

// ErrNotDue means a send task ran before its survey was due.
var ErrNotDue = errors.New("survey not due yet")

// SendOutcome says what a send task did.
type SendOutcome string

const (
	OutcomeSent    SendOutcome = "sent"
	OutcomeExpired SendOutcome = "expired" // disabled, or its window passed
	OutcomeNoop    SendOutcome = "noop"    // already handled, or being handled
)

const (
	// SendBatch is how many due surveys of a tenant one send task
	// emails: its own and up to SendBatch-1 others.
	SendBatch = 50
	// DefaultClaimLease is how long a send claim keeps other workers off
	// a survey (Service.ClaimLease). A worker that dies leaves claims that
	// lapse after it; a survey whose email was handed over is then
	// finished as sent. A batch stops taking surveys a third of it before
	// the end.
	DefaultClaimLease = 30 * time.Second
	// dueSlack lets a task that fires a little early send anyway.
	dueSlack = 2 * time.Second
)

// claim is one survey a send holds: its new token and, once handed to SMTP,
// when.
type claim struct {
	sv     *db.Survey
	token  string
	hash   []byte
	handed bool
}

// sendBatch is what a claim transaction took: the surveys to email, with
// the tenant's settings loaded once for all of them.
type sendBatch struct {
	claims  []*claim // the task's own survey first, when it was claimed
	own     *claim
	tenant  *db.Tenant
	cfg     *db.Config
	at      time.Time   // the claims' time
	outcome SendOutcome // the own survey's, unless it was claimed
	taken   int         // surveys locked: claimed, finished or expired
	stamps  *emailStamps
}

// Send emails the survey of a send task and, in the same pass, up to
// SendBatch-1 other due surveys of its tenant: a wave of thousands of
// surveys due at once goes out with one claim and one status update per
// batch, over pooled SMTP connections, while the tasks of surveys already
// sent find them sent and do nothing.
//
// Each email is sent exactly once, even if the worker is killed at any
// moment:
//
//  1. a transaction claims the surveys (a token hash and a lease);
//  2. per email, the handoff (handed_at) is recorded while the SMTP
//     server holds the whole message, and committed right after the final
//     "." releases it, before the server's answer is read; the emails of a
//     group (HandoffGroup) are held together and share that transaction;
//  3. a transaction marks the handed surveys sent.
//
// A crash before 2 commits: the server discards the unfinished message,
// the claim lapses and the survey is sent again later. A crash after it:
// the survey has handed_at, so the next claim (or a click on its links)
// finishes it as sent instead of emailing again. The handoff's commit is
// asynchronous with AsyncHandoff (handoffContext): a crash of Postgres
// itself can then undo the handoffs of its last moments, whose emails are
// repeated when their claims lapse.
func (s *Service) Send(ctx context.Context, tenantID, surveyID string) (SendOutcome, error) {
	if tenantID == "" {
		return OutcomeNoop, errs.ErrNoTenant
	}
	s.sends.Add(1)
	defer s.sends.Done()
	b, err := s.claimBatch(ctx, tenantID, surveyID, time.Time{})
	if err != nil || len(b.claims) == 0 {
		return b.outcome, err
	}
	ownErr, err := s.deliverAndRecord(ctx, tenantID, b)
	if err != nil {
		// The handoffs are committed: the next claim finishes them.
		return OutcomeNoop, err
	}
	switch {
	case ownErr != nil:
		return OutcomeNoop, ownErr
	case b.own != nil && b.own.handed:
		return OutcomeSent, nil
	case b.own != nil:
		return OutcomeNoop, nil // another worker or a cancel took it
	}
	return b.outcome, nil
}

// ErrSendIncomplete means SendDue stopped at a batch whose emails did not
// all go out (an SMTP failure, a claim taken over): the rest are due again.
var ErrSendIncomplete = errors.New("survey emails left unsent; due again")

// SendDue emails the tenant's surveys due before the given time (or by now,
// when that is later: up to a second early for a task that runs at the
// start of its second), batch after batch of SendBatch, each as Send does
// (claim, handoff per email, finish). Several may run at once for the same
// tenant: each batch takes surveys the others have not locked or claimed.
//
// It returns how many emails went out. It stops when a batch comes back
// short (nothing more is due), when a batch did not go out whole
// (ErrSendIncomplete), or, after a full batch, with more true when ctx
// ended or its deadline is nearer than a claim lease (the caller continues
// in a new task).
func (s *Service) SendDue(ctx context.Context, tenantID string, before time.Time) (sent int, more bool, err error) {
	if tenantID == "" {
		return 0, false, errs.ErrNoTenant
	}
	s.sends.Add(1)
	defer s.sends.Done()
	for {
		b, err := s.claimBatch(ctx, tenantID, "", before)
		if err != nil {
			return sent, false, err
		}
		handed := 0
		if len(b.claims) > 0 {
			// No own survey: delivery failures are logged.
			if _, err := s.deliverAndRecord(ctx, tenantID, b); err != nil {
				// The handoffs are committed: the next claim finishes them.
				return sent, false, err
			}
			for _, c := range b.claims {
				if c.handed {
					handed++
				}
			}
			sent += handed
		}
		switch {
		case handed < len(b.claims) && ctx.Err() != nil:
			return sent, true, nil // cancelled: the rest were given back
		case handed < len(b.claims):
			return sent, false, ErrSendIncomplete
		case b.taken < SendBatch:
			return sent, false, nil
		}
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(dl) < s.claimLease() {
			return sent, true, nil
		}
	}
}

// deliverAndRecord emails a claimed batch, then records what was handed
// over even when ctx is being cancelled (a worker shutting down): those
// emails are out. ownErr is the task's own survey's delivery error.
func (s *Service) deliverAndRecord(ctx context.Context, tenantID string, b *sendBatch) (ownErr, err error) {
	ownErr = s.deliver(ctx, tenantID, b)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return ownErr, s.recordSent(fctx, tenantID, b)
}

// CountDue counts the tenant's pending surveys due before the later of now
// and the given time, up to limit: how many a wave holds, to share it between workers.
func (s *Service) CountDue(ctx context.Context, tenantID string, before time.Time, limit int) (int, error) {
	if now := s.now(); before.Before(now) {
		before = now
	}
	var n int
	err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		n, err = db.CountDue(ctx, idb, tenantID, before, limit)
		return err
	})
	return n, err
}

// claimBatch locks the task's survey (none when surveyID is empty) and up
// to SendBatch other surveys due before the later of now and before,
// expires those that may no longer be sent, finishes those a dead worker
// handed over, and claims the rest with fresh tokens.
func (s *Service) claimBatch(ctx context.Context, tenantID, surveyID string, before time.Time) (*sendBatch, error) {
	b := &sendBatch{outcome: OutcomeNoop}
	if surveyID != "" {
		// Most tasks of a wave find their survey sent by another task's
		// batch: one read tells, without a transaction.
		var pre *db.Survey
		err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
			pre, err = db.GetSurvey(ctx, idb, tenantID, surveyID)
			return err
		})
		if errors.Is(err, errs.ErrNotFound) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if !sendable(pre, s.now().Add(-s.claimLease())) {
			return b, nil // handled, or being handled
		}
	}
	err := s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		b.claims, b.own, b.outcome, b.taken = nil, nil, OutcomeNoop, 0
		now := s.now()
		b.at = now
		stale := now.Add(-s.claimLease())
		var cands []db.Survey
		if surveyID != "" {
			own, err := db.LockSurvey(ctx, tx, tenantID, surveyID)
			if errors.Is(err, errs.ErrNotFound) {
				return nil // gone, or another worker holds it
			}
			if err != nil {
				return err
			}
			if !sendable(own, stale) {
				return nil // handled, or being handled
			}
			if now.Before(own.ScheduledFor.Add(-dueSlack)) {
				return ErrNotDue
			}
			cands = append(cands, *own)
		}
		if before.Before(now) {
			before = now
		}
		others, err := db.ClaimableDue(ctx, tx, tenantID, surveyID, before, stale, SendBatch-len(cands))
		if err != nil {
			return err
		}
		cands = append(cands, others...)
		b.taken = len(cands)
		if len(cands) == 0 {
			return nil
		}
		if b.cfg, err = db.GetConfig(ctx, tx, tenantID); err != nil {
			return fmt.Errorf("load config: %w", err)
		}
		if b.tenant, err = db.GetTenant(ctx, tx, tenantID); err != nil {
			return fmt.Errorf("load tenant: %w", err)
		}
		emails := make([]string, len(cands))
		for i := range cands {
			emails[i] = cands[i].ContactEmail
		}
		optedOut, err := db.UnsubscribedAmong(ctx, tx, tenantID, emails)
		if err != nil {
			return err
		}
		cfg := configOf(b.cfg)
		// Ends (a dead worker's handoff: sent; no longer sendable: expired)
		// go in one statement, so its rollup changes are applied in key
		// order (two statements could lock them in opposite orders).
		var ends, endStatus, ids []string
		var hashes [][]byte
		for i := range cands {
			sv := &cands[i]
			own := surveyID != "" && i == 0
			switch {
			case sv.HandedAt != nil:
				ends, endStatus = append(ends, sv.ID), append(endStatus, db.StatusSent)
			case !cfg.Enabled || WindowPassed(sv.ScheduledFor, cfg, now) || optedOut[strings.ToLower(sv.ContactEmail)]:
				ends, endStatus = append(ends, sv.ID), append(endStatus, db.StatusExpired)
				if own {
					b.outcome = OutcomeExpired
				}
			default:
				c := &claim{sv: sv, token: NewToken(tenantID)}
				c.hash = secret.Hash(c.token)
				b.claims = append(b.claims, c)
				ids, hashes = append(ids, sv.ID), append(hashes, c.hash)
				if own {
					b.own = c
				}
			}
		}
		done, err := db.EndPending(ctx, tx, tenantID, ends, endStatus, now)
		if err != nil {
			return err
		}
		for i := range done {
			typ := EventExpired
			if done[i].Status == db.StatusSent {
				typ = EventSent
			}
			emit(s.surveyEvent(typ, &done[i]))
		}
		if len(ids) > 0 {
			return db.Claim(ctx, tx, tenantID, ids, hashes, now)
		}
		return nil
	})
	if err == nil {
		for _, c := range b.claims {
			c.sv.TokenHash, c.sv.ClaimedAt = c.hash, &b.at
		}
	}
	return b, err
}

// deliver emails the claimed surveys group after group (deliverGroup). It
// stops after the first group with a failure (an SMTP outage would fail
// the rest too) and gives the unsent claims back. It returns the own
// survey's error (the own survey goes first).
func (s *Service) deliver(ctx context.Context, tenantID string, b *sendBatch) error {
	bound := db.WithTenant(ctx, tenantID)
	b.stamps = s.newEmailStamps(b.tenant, b.cfg)
	size := s.groupSize()
	for i := 0; i < len(b.claims); i += size {
		// Near the lease's end another worker may re-claim these, and a
		// cancelled task (shutdown) should stop: leave them.
		if i > 0 && (ctx.Err() != nil || s.now().After(b.at.Add(s.claimLease()*2/3))) {
			s.release(ctx, tenantID, b.claims[i:])
			return nil
		}
		group := b.claims[i:min(i+size, len(b.claims))]
		var ownErr error
		failed := false
		for j, err := range s.deliverGroup(ctx, bound, b, group) {
			switch {
			case err == nil:
			case group[j] == b.own:
				ownErr, failed = err, true
			default:
				failed = true
				s.log().Warn("survey email failed; it is due again", "tenant_id", tenantID, "survey_id", group[j].sv.ID, "err", err)
			}
		}
		if failed {
			s.release(ctx, tenantID, b.claims[i+len(group):])
			return ownErr
		}
	}
	return nil
}

// deliverGroup renders the emails of a group of claims and sends them at
// once, one SMTP connection each, with one handoff transaction for all of
// them (handoffGroup). It returns each claim's error; a failed claim is
// given back, unless its email may have gone out.
func (s *Service) deliverGroup(ctx, bound context.Context, b *sendBatch, group []*claim) []error {
	errs := make([]error, len(group))
	msgs := make([]mail.Message, len(group))
	unsubs := make([][]byte, len(group))
	var live []int
	for j, c := range group {
		unsub := NewToken(c.sv.TenantID)
		msg, err := b.stamps.render(c.sv, c.token, unsub)
		if err != nil {
			s.release(ctx, c.sv.TenantID, []*claim{c})
			errs[j] = err
			continue
		}
		msgs[j], unsubs[j] = msg, secret.Hash(unsub)
		live = append(live, j)
	}
	if len(live) == 0 {
		return errs
	}
	done, err := s.takeSlots(ctx, len(live))
	if err != nil {
		for _, j := range live {
			errs[j] = s.settle(ctx, group[j], err)
		}
		return errs
	}
	defer done()
	hold := func(held []int) (bun.Tx, []bool, error) { return s.holdGroup(bound, b, group, unsubs, held) }
	if len(live) == 1 {
		// Alone: no one to wait for, so no goroutine and no coordinator.
		j := live[0]
		errs[j] = s.Mailer.Send(ctx, msgs[j], soloHandoff(j, group[j], hold))
	} else {
		g := newHandoffGroup(len(group))
		var wg sync.WaitGroup
		for _, j := range live {
			wg.Go(func() {
				errs[j] = s.Mailer.Send(ctx, msgs[j], g.member(j, group[j]))
				g.done(j)
			})
		}
		g.run(len(live), hold, func(tx bun.Tx, undone []int) error {
			ids, hashes := make([]string, len(undone)), make([][]byte, len(undone))
			for k, j := range undone {
				ids[k], hashes[k] = group[j].sv.ID, group[j].hash
			}
			return db.ReleaseClaims(s.handoffContext(bound), tx, b.tenant.ID, ids, hashes)
		})
		wg.Wait()
	}
	for _, j := range live {
		errs[j] = s.settle(ctx, group[j], errs[j])
	}
	return errs
}

// holdGroup begins the handoff transaction of a group and records the
// handoff of its held claims (db.Handoff); kept says, per held claim,
// whether it is still ours.
func (s *Service) holdGroup(bound context.Context, b *sendBatch, group []*claim, unsubs [][]byte, held []int) (bun.Tx, []bool, error) {
	hctx := s.handoffContext(bound)
	tx, err := s.DB.BeginTx(hctx, nil)
	if err != nil {
		return tx, nil, fmt.Errorf("begin handoff: %w", err)
	}
	ids, hashes, unsubHashes := make([]string, len(held)), make([][]byte, len(held)), make([][]byte, len(held))
	for k, j := range held {
		ids[k], hashes[k], unsubHashes[k] = group[j].sv.ID, group[j].hash, unsubs[j]
	}
	now := s.now()
	recorded, err := db.Handoff(hctx, tx, b.tenant.ID, ids, hashes, unsubHashes, now, ExpiresAt(now, configOf(b.cfg)))
	if err != nil {
		_ = tx.Rollback()
		return tx, nil, err
	}
	kept := make([]bool, len(held))
	for k, id := range ids {
		kept[k] = slices.Contains(recorded, id)
	}
	return tx, kept, nil
}

// settle turns a claim's Send error into the claim's outcome: nil when its
// email is out (or was abandoned because the claim is no longer ours), the
// error otherwise. A refused email's claim is given back.
func (s *Service) settle(ctx context.Context, c *claim, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errClaimLost):
		return nil // another worker or a cancel took it: nothing was sent
	case c.handed && errors.Is(err, mail.ErrUncertain):
		// Released, but the reply was lost: the server may hold it.
		// Counting it sent risks a lost email; sending again, a repeat.
		s.log().Warn("survey email outcome unknown; counted as sent", "tenant_id", c.sv.TenantID, "survey_id", c.sv.ID, "err", err)
		return nil
	case errors.Is(err, mail.ErrUnrecorded):
		// The message is out but its record did not commit: the survey
		// stays claimed, and is sent again when the claim lapses.
		s.log().Error("survey email released but not recorded; it may be sent twice", "tenant_id", c.sv.TenantID, "survey_id", c.sv.ID, "err", err)
		return fmt.Errorf("send survey email: %w", err)
	}
	c.handed = false // refused: the release below clears the handoff
	s.release(ctx, c.sv.TenantID, []*claim{c})
	return fmt.Errorf("send survey email: %w", err)
}

var errClaimLost = errors.New("send claim lost")

// handoffContext is the context of a handoff group's transaction: its
// commit is asynchronous with AsyncHandoff. Losing that commit to a
// Postgres crash leaves the survey claimed and not handed, as if the worker
// had died between the final "." and the COMMIT: the email may be repeated
// once its claim lapses, never lost. The claim and the final status are
// committed durably either way.
func (s *Service) handoffContext(bound context.Context) context.Context {
	if s.AsyncHandoff {
		return db.WithAsyncCommit(bound)
	}
	return bound
}

// release gives claims back so the surveys are due again at once.
func (s *Service) release(ctx context.Context, tenantID string, cs []*claim) {
	ids, hashes := make([]string, 0, len(cs)), make([][]byte, 0, len(cs))
	for _, c := range cs {
		ids, hashes = append(ids, c.sv.ID), append(hashes, c.hash)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := db.ReleaseClaims(db.WithTenant(ctx, tenantID), s.DB, tenantID, ids, hashes); err != nil {
		s.log().Warn("release send claims failed; they lapse", "tenant_id", tenantID, "err", err)
	}
}

// recordSent marks the surveys whose email was handed over sent, emits
// their events and schedules their expiry.
func (s *Service) recordSent(ctx context.Context, tenantID string, b *sendBatch) error {
	var ids []string
	for _, c := range b.claims {
		if c.handed {
			ids = append(ids, c.sv.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var done []db.Survey
	err := s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		var err error
		sent := make([]string, len(ids))
		for i := range sent {
			sent[i] = db.StatusSent
		}
		if done, err = db.EndPending(ctx, tx, tenantID, ids, sent, s.now()); err != nil {
			return err
		}
		for i := range done {
			emit(s.surveyEvent(EventSent, &done[i]))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range done {
		sv := &done[i]
		if err := s.Jobs.ScheduleExpire(ctx, tenantID, sv.ID, *sv.ExpiresAt); err != nil {
			s.log().Warn("enqueue expiry failed; the sweep will expire it", "tenant_id", tenantID, "survey_id", sv.ID, "err", err)
		}
	}
	return nil
}

// sendable reports whether a send may claim sv: pending, and not claimed by
// another send since stale (an older claim has lapsed).
func sendable(sv *db.Survey, stale time.Time) bool {
	return sv.Status == db.StatusPending && (sv.ClaimedAt == nil || !sv.ClaimedAt.After(stale))
}

// finishHanded turns a pending survey whose email was handed over into the
// sent survey it is, in memory; it reports whether it did.
func finishHanded(sv *db.Survey) bool {
	if sv.Status != db.StatusPending || sv.HandedAt == nil {
		return false
	}
	sv.Status, sv.SentAt = db.StatusSent, sv.HandedAt
	return true
}

// WaitSends waits up to d for the sends in progress to end. A send whose
// task was cancelled (a worker shutting down) still records the emails it
// handed over and gives back its other claims: the database must stay open
// until then.
func (s *Service) WaitSends(d time.Duration) bool {
	done := make(chan struct{})
	go func() { s.sends.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *Service) claimLease() time.Duration {
	if s.ClaimLease > 0 {
		return s.ClaimLease
	}
	return DefaultClaimLease
}
