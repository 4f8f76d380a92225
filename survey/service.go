package survey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/sync/semaphore"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/tenants"
)

// Scheduler enqueues the delayed work of a survey (the jobs package).
type Scheduler interface {
	ScheduleSend(ctx context.Context, tenantID, surveyID string, at time.Time) error
	ScheduleExpire(ctx context.Context, tenantID, surveyID string, at time.Time) error
}

// Service runs the survey lifecycle. REST, GraphQL and the workers all call
// it, so the rules live once.
type Service struct {
	DB      *bun.DB
	Jobs    Scheduler
	Mailer  mail.Sender
	BaseURL string // PUBLIC_BASE_URL, for links in emails
	Log     *slog.Logger
	Events  []EventSink
	Now     func() time.Time
	// ClaimLease bounds how long a dead worker's send claims hold
	// surveys back (DefaultClaimLease when zero).
	ClaimLease time.Duration
	// AsyncHandoff lets each handoff group's commit go without waiting
	// for its WAL flush (SEND_ASYNC_HANDOFF): a Postgres crash in the
	// flush window (at most 600 ms by default) can then repeat the emails
	// handed over in it, never lose one (see Send). Off by default.
	AsyncHandoff bool
	// HandoffGroup is how many emails of a batch go out together, with
	// one handoff transaction (SEND_HANDOFF_GROUP; DefaultHandoffGroup
	// when zero; 1 records each email's handoff alone).
	HandoffGroup int
	// MaxInFlight caps the emails this process has on their way to the
	// SMTP server at once, one connection each (WORKER_CONCURRENCY; no cap
	// when zero): the handoff groups of concurrent sends take turns
	// rather than open more connections than a relay allows.
	MaxInFlight int

	inFlight     *semaphore.Weighted
	inFlightOnce sync.Once
	sends        sync.WaitGroup // Send calls in progress (WaitSends)
	folds        foldQueue      // tenants whose analytics deltas wait (RunFolds)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Clock is the service's current time.
func (s *Service) Clock() time.Time { return s.now() }

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// read runs fn with a handle for reading one tenant's data. Every access to
// tenant data goes through read or tx, the one place where the tenant is
// bound for row-level security (db.WithTenant: each statement run with the
// ctx fn gets sets app.tenant_id in the same round trip).
func (s *Service) read(ctx context.Context, tenantID string, fn func(ctx context.Context, idb bun.IDB) error) error {
	if tenantID == "" {
		return errs.ErrNoTenant
	}
	return fn(db.WithTenant(ctx, tenantID), s.DB)
}

// tx runs fn in a transaction on one tenant's data, gives its events to the
// sinks inside it and, once committed, after it.
func (s *Service) tx(ctx context.Context, tenantID string, fn func(ctx context.Context, tx bun.Tx, emit func(Event)) error) error {
	if tenantID == "" {
		return errs.ErrNoTenant
	}
	var events []Event
	ctx = db.WithTenant(ctx, tenantID) // row-level security: see db/rls.go
	err := db.RetryTx(ctx, func() error {
		// The outbox's endpoints, read by the change's first statement
		// where it can (db.WebhookTargets); afresh in every attempt.
		ctx, _ := db.WithWebhookTargets(ctx)
		return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			events = events[:0]
			if err := fn(ctx, tx, func(ev Event) { events = append(events, ev) }); err != nil {
				return err
			}
			for _, sink := range s.Events {
				if many, ok := sink.(ManySink); ok {
					if err := many.InTxMany(ctx, tx, events); err != nil {
						return err
					}
					continue
				}
				for _, ev := range events {
					if err := sink.InTx(ctx, tx, ev); err != nil {
						return fmt.Errorf("record event %s: %w", ev.Type, err)
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.folds.add(tenantID)
	for _, ev := range events {
		for _, sink := range s.Events {
			sink.AfterCommit(ctx, ev)
		}
	}
	return nil
}

func (s *Service) surveyEvent(typ string, sv *db.Survey) Event {
	cp := *sv
	return Event{Type: typ, TenantID: sv.TenantID, At: s.now(), Survey: &cp}
}

// IntakeResult says what an intake did.
type IntakeResult struct {
	Survey  *db.Survey // nil when skipped
	Created bool
	Skipped string // why nothing was stored, e.g. "csat_disabled"
}

// Skip reasons.
const SkipDisabled = "csat_disabled"

// Intake records a resolved conversation of the context's tenant and
// schedules its survey. It is idempotent per conversation.
func (s *Service) Intake(ctx context.Context, in IntakeInput) (IntakeResult, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWrite)
	if err != nil {
		return IntakeResult{}, err
	}
	now := s.now()
	if err := in.Normalize(now); err != nil {
		return IntakeResult{}, err
	}
	var res IntakeResult
	for attempt := 1; ; attempt++ {
		err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
			return s.intake(ctx, tx, emit, tenantID, in, now, &res)
		})
		// A concurrent intake of the conversation committed its survey
		// between our read and our insert: a second attempt reads it.
		if !errors.Is(err, db.ErrConversationTaken) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return IntakeResult{}, fmt.Errorf("intake: %w", err)
	}
	if res.Created {
		// Postgres holds what is due; if Redis is down the sweep enqueues it.
		if err := s.Jobs.ScheduleSend(ctx, tenantID, res.Survey.ID, res.Survey.ScheduledFor); err != nil {
			s.log().Warn("enqueue send failed; the sweep will retry", "tenant_id", tenantID, "survey_id", res.Survey.ID, "err", err)
		}
	}
	return res, nil
}

// intake is Intake's transaction: it stores the conversation's survey or
// says why not in res.
func (s *Service) intake(ctx context.Context, tx bun.Tx, emit func(Event), tenantID string, in IntakeInput, now time.Time, res *IntakeResult) error {
	// The conversation's survey, the config and the opt-out in one
	// statement; the checks below keep their order.
	st, err := db.GetIntakeState(ctx, tx, tenantID, in.ConversationID, in.ContactEmail)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	if st.ExistingID != "" {
		existing, err := db.GetSurvey(ctx, tx, tenantID, st.ExistingID)
		if err != nil {
			return err
		}
		*res = IntakeResult{Survey: existing}
		return nil
	}
	cfg := st.Config
	if !cfg.Enabled {
		*res = IntakeResult{Skipped: SkipDisabled}
		return nil
	}
	if st.OptedOut {
		*res = IntakeResult{Skipped: SkipUnsubscribed}
		return nil
	}
	if in.Locale == "" {
		in.Locale = cfg.DefaultLocale
	}
	sv := &db.Survey{
		TenantID:       tenantID,
		ID:             secret.ID("csat_"),
		ConversationID: in.ConversationID,
		ContactEmail:   in.ContactEmail,
		ContactName:    in.ContactName,
		AgentID:        in.AgentID,
		TeamID:         in.TeamID,
		Channel:        in.Channel,
		Locale:         in.Locale,
		Status:         db.StatusPending,
		ResolvedAt:     *in.ResolvedAt,
		ScheduledFor:   ScheduledFor(*in.ResolvedAt, configOf(cfg)),
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	// Sent with the COMMIT (or the outbox's first write): one round trip
	// less. The read above found no survey for the conversation; one
	// stored since by a concurrent intake fails the transaction with
	// db.ErrConversationTaken, and Intake runs it again.
	if err := db.InsertNewSurvey(ctx, tx, sv); err != nil {
		return err
	}
	*res = IntakeResult{Survey: sv, Created: true}
	emit(s.surveyEvent(EventScheduled, sv))
	return nil
}

// Get returns one survey of the context's tenant.
func (s *Service) Get(ctx context.Context, id string) (*db.Survey, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return nil, err
	}
	if !secret.ValidID("csat_", id) {
		return nil, errs.ErrNotFound // never a survey id: no query
	}
	var sv *db.Survey
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		sv, err = db.GetSurvey(ctx, idb, tenantID, id)
		return err
	})
	return sv, err
}

// GetMany returns the context tenant's surveys with these ids (for
// dataloaders); ids of other tenants are simply absent.
func (s *Service) GetMany(ctx context.Context, ids []string) ([]db.Survey, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return nil, err
	}
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !secret.ValidID("csat_", id) })
	var out []db.Survey
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		out, err = db.GetSurveysByIDs(ctx, idb, tenantID, ids)
		return err
	})
	return out, err
}

// Page is one page of a survey list.
type Page struct {
	Surveys []db.Survey
	Total   int
}

// MaxLimit is the largest page a list returns.
const MaxLimit = 100

// List returns a page of the context tenant's surveys, newest first.
func (s *Service) List(ctx context.Context, f db.SurveyFilter, limit, offset int) (Page, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return Page{}, err
	}
	if limit < 1 || limit > MaxLimit {
		return Page{}, errs.New(errs.Invalid, "limit must be from 1 to %d", MaxLimit)
	}
	if offset < 0 {
		return Page{}, errs.New(errs.Invalid, "offset must not be negative")
	}
	if err := ValidateFilter(f); err != nil {
		return Page{}, err
	}
	var rows []db.Survey
	var total int
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		rows, total, err = db.ListSurveys(ctx, idb, tenantID, f, limit, offset)
		return err
	})
	if err != nil {
		return Page{}, err
	}
	return Page{Surveys: rows, Total: total}, nil
}

// Config returns the context tenant's CSAT config.
func (s *Service) Config(ctx context.Context) (*db.Config, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return nil, err
	}
	var c *db.Config
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		c, err = db.GetConfig(ctx, idb, tenantID)
		return err
	})
	return c, err
}

// UpdateConfig applies a partial update to the context tenant's config.
func (s *Service) UpdateConfig(ctx context.Context, p ConfigPatch) (*db.Config, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeConfigWrite)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var out *db.Config
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		c, err := db.GetConfigForUpdate(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		p.Apply(c)
		c.UpdatedAt = s.now()
		if err := db.UpdateConfig(ctx, tx, c); err != nil {
			return err
		}
		out = c
		cp := *c
		emit(Event{Type: EventConfigUpdated, TenantID: tenantID, At: c.UpdatedAt, Config: &cp})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update config: %w", err)
	}
	return out, nil
}

// NewToken makes a survey link token. It carries the tenant id so the
// lookup is routed by tenant, and 192 random bits.
func NewToken(tenantID string) string { return tenantID + "." + secret.Token(24) }

// parseToken splits a token into tenant id and hash; any malformed token
// is simply not found.
func parseToken(token string) (tenantID string, hash []byte, err error) {
	i := strings.LastIndexByte(token, '.')
	if i <= 0 || len(token) > 128 || !db.ValidTenantID(token[:i]) || len(token)-i-1 < 22 {
		return "", nil, errs.New(errs.NotFound, "unknown survey link")
	}
	return token[:i], secret.Hash(token), nil
}

// Lookup returns the survey a public link points to, without changing it.
func (s *Service) Lookup(ctx context.Context, token string) (*db.Survey, error) {
	tenantID, hash, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	var sv *db.Survey
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		// FOR SHARE waits for a send in progress, so a link opened the
		// moment its email arrives sees the sent survey.
		sv, err = db.GetSurveyByToken(ctx, idb, tenantID, hash, false)
		return err
	})
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return nil, errs.New(errs.NotFound, "unknown survey link")
		}
		return nil, err
	}
	return sv, nil
}

// TenantName returns the display name of a tenant, for pages.
func (s *Service) TenantName(ctx context.Context, tenantID string) string {
	var name string
	_ = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) error {
		t, err := db.GetTenant(ctx, idb, tenantID)
		if err == nil {
			name = t.Name
		}
		return err
	})
	return name
}

// Rate records a one-click rating. Link scanners open every link: when
// ScannerLimit different ratings arrive within ScannerWin, the rating is
// cleared and the survey flagged. The clicks are counted on the survey's
// row (RecordClick), which the answer's transaction holds locked: a
// concurrent click of the same survey waits, then reads the row as this one
// left it.
func (s *Service) Rate(ctx context.Context, token string, rating int) (*db.Survey, error) {
	if !ValidRating(rating) {
		return nil, errs.New(errs.Invalid, "rating must be an integer from 1 to 5")
	}
	return s.answer(ctx, token, func(_ context.Context, _ bun.Tx, sv *db.Survey, now time.Time) (bool, error) {
		var n int
		sv.LastClicks, n = RecordClick(sv.LastClicks, rating, now)
		if n >= ScannerLimit {
			sv.Rating, sv.RespondedAt, sv.Status, sv.Flagged = nil, nil, db.StatusSent, true
			return false, nil
		}
		sv.Rating, sv.RespondedAt, sv.Status = &rating, &now, db.StatusCompleted
		return true, nil
	})
}

// Submit records the full survey: a rating and optional feedback (nil
// keeps what was given before).
func (s *Service) Submit(ctx context.Context, token string, rating int, feedback *string) (*db.Survey, error) {
	if !ValidRating(rating) {
		return nil, errs.Validation(map[string]string{"rating": "must be an integer from 1 to 5"})
	}
	if feedback != nil {
		if err := ValidateFeedback(*feedback); err != nil {
			return nil, err
		}
	}
	return s.answer(ctx, token, func(_ context.Context, _ bun.Tx, sv *db.Survey, now time.Time) (bool, error) {
		sv.Rating, sv.RespondedAt, sv.Status = &rating, &now, db.StatusCompleted
		if feedback != nil {
			fb := strings.TrimSpace(*feedback)
			sv.Feedback = &fb
			if fb == "" {
				sv.Feedback = nil
			}
		}
		return true, nil
	})
}

// answer loads and locks the survey behind a token, checks that it can be
// answered, lets change modify it and stores the result (db.StoreAnswer).
func (s *Service) answer(ctx context.Context, token string, change func(context.Context, bun.Tx, *db.Survey, time.Time) (bool, error)) (*db.Survey, error) {
	tenantID, hash, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	var out *db.Survey
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		now := s.now()
		sv, err := db.GetSurveyByToken(ctx, tx, tenantID, hash, true)
		if err != nil {
			if errors.Is(err, errs.ErrNotFound) {
				return errs.New(errs.NotFound, "unknown survey link")
			}
			return err
		}
		// A click can outrun the send's last commit: the email was handed
		// over (the customer has it), the row still says pending. It is
		// the sent survey it is; the one update below stores both.
		stored := sv.Status
		if finishHanded(sv) {
			emit(s.surveyEvent(EventSent, sv))
		}
		if err := Answerable(sv, now); err != nil {
			return err
		}
		from := sv.Status
		completed, err := change(ctx, tx, sv, now)
		if err != nil {
			return err
		}
		if !CanTransition(from, sv.Status) {
			return fmt.Errorf("survey %s: %s to %s is not allowed", sv.ID, from, sv.Status)
		}
		// Sent with the COMMIT (or the outbox's first write): one round
		// trip less.
		if err := db.StoreAnswer(ctx, tx, sv, stored); err != nil {
			return err
		}
		if completed {
			emit(s.surveyEvent(EventCompleted, sv))
		} else {
			emit(s.surveyEvent(EventRatingCleared, sv))
		}
		out = sv
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Links are the public URLs of a survey token.
type Links struct {
	Rate   [5]string
	Survey string
}

// LinksFor builds the public links for a token.
func (s *Service) LinksFor(token string) Links {
	base := strings.TrimRight(s.BaseURL, "/")
	var l Links
	for i := range l.Rate {
		l.Rate[i] = fmt.Sprintf("%s/api/v1/csat/rate?token=%s&rating=%d", base, token, i+1)
	}
	l.Survey = base + "/s/" + token
	return l
}

// Expire marks one sent survey expired once its link expired.
func (s *Service) Expire(ctx context.Context, tenantID, surveyID string) (bool, error) {
	if tenantID == "" {
		return false, errs.ErrNoTenant
	}
	done := false
	err := s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		sv, err := db.LockSurvey(ctx, tx, tenantID, surveyID)
		if errors.Is(err, errs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if sv.Status != db.StatusSent || sv.ExpiresAt == nil || s.now().Before(*sv.ExpiresAt) {
			return nil
		}
		sv.Status = db.StatusExpired
		if err := db.UpdateLockedSurvey(ctx, tx, sv, db.StatusSent, "status"); err != nil {
			return err
		}
		emit(s.surveyEvent(EventExpired, sv))
		done = true
		return nil
	})
	return done, err
}

// SweepResult counts what a sweep did.
type SweepResult struct {
	Tenants  int
	Enqueued int
	Expired  int
}

// Sweep makes Postgres the source of truth for what is due: it expires
// sent surveys whose links expired, enqueues every pending survey due
// before now+horizon, and folds each tenant's analytics deltas (those a
// process that died never folded). Tasks are idempotent, so enqueueing
// one that is already queued is harmless.
func (s *Service) Sweep(ctx context.Context, horizon time.Duration) (SweepResult, error) {
	ids, err := db.ListTenantIDs(ctx, s.DB)
	if err != nil {
		return SweepResult{}, err
	}
	res := SweepResult{Tenants: len(ids)}
	now := s.now()
	for _, tenantID := range ids {
		n, err := s.expireOverdue(ctx, tenantID, now)
		res.Expired += n
		if err != nil {
			return res, fmt.Errorf("sweep tenant %s: %w", tenantID, err)
		}
		n, err = s.enqueueDue(ctx, tenantID, now.Add(horizon))
		res.Enqueued += n
		if err != nil {
			return res, fmt.Errorf("sweep tenant %s: %w", tenantID, err)
		}
		if err := s.FoldStats(ctx, tenantID); err != nil {
			return res, fmt.Errorf("sweep tenant %s: %w", tenantID, err)
		}
	}
	return res, nil
}

const sweepBatch = 1000

// ExpireDue expires the tenant's sent surveys whose links expired by now,
// as the sweep does, and returns how many.
func (s *Service) ExpireDue(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, errs.ErrNoTenant
	}
	return s.expireOverdue(ctx, tenantID, s.now())
}

func (s *Service) expireOverdue(ctx context.Context, tenantID string, now time.Time) (int, error) {
	total := 0
	for {
		var batch []db.Survey
		err := s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
			var err error
			batch, err = db.ExpireSent(ctx, tx, tenantID, now, sweepBatch)
			for i := range batch {
				emit(s.surveyEvent(EventExpired, &batch[i]))
			}
			return err
		})
		total += len(batch)
		if err != nil || len(batch) < sweepBatch {
			return total, err
		}
	}
}

func (s *Service) enqueueDue(ctx context.Context, tenantID string, before time.Time) (int, error) {
	n := 0
	var due []db.DueRef
	err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		due, err = db.DuePending(ctx, idb, tenantID, before, 20*sweepBatch)
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, d := range due {
		if err := s.Jobs.ScheduleSend(ctx, tenantID, d.ID, d.ScheduledFor); err != nil {
			return n, fmt.Errorf("enqueue send: %w", err)
		}
		n++
	}
	return n, nil
}
