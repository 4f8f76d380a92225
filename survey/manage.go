package survey

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/tenants"
)

// EventResent is internal (live updates only): a sent survey was emailed
// again with a fresh link.
const EventResent = "survey.resent"

// Resendable reports why a survey cannot be emailed again now, or nil: only
// a sent survey without a response whose link still works can be.
func Resendable(sv *db.Survey, now time.Time) error {
	switch {
	case sv.Status == db.StatusPending:
		return errs.New(errs.Conflict, "this survey has not been sent yet")
	case sv.Status == db.StatusCompleted || sv.Rating != nil:
		return errs.New(errs.Conflict, "this survey has already been answered")
	case LinkExpired(sv, now):
		return errs.New(errs.Conflict, "this survey has expired")
	case sv.Status != db.StatusSent:
		return errs.New(errs.Conflict, "this survey cannot be resent")
	}
	return nil
}

// Cancelable reports why a survey cannot be cancelled, or nil: only a
// pending survey can be.
func Cancelable(sv *db.Survey) error {
	if sv.Status != db.StatusPending {
		return errs.New(errs.Conflict, "only a pending survey can be cancelled; this one is %s", sv.Status)
	}
	if sv.HandedAt != nil {
		return errs.New(errs.Conflict, "this survey's email is being sent")
	}
	return nil
}

// Resend emails a sent, unanswered survey of the context's tenant again
// with a fresh token. Like Send, it stores the new token's hash before the
// email leaves, so an instant click finds the survey: the old token's hash
// is replaced, so the old links stop working at once; the new link gets the
// tenant's full expiry from now. The survey keeps its first sent_at, so
// analytics count it as sent once. Should the email fail, the error says
// so and resending again is allowed.
func (s *Service) Resend(ctx context.Context, id string) (*db.Survey, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWrite)
	if err != nil {
		return nil, err
	}
	token := NewToken(tenantID)
	var out *db.Survey
	var msg mail.Message
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		// Waits for a rating being recorded on the same row, then re-checks.
		sv, err := db.GetSurveyForUpdate(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		now := s.now()
		if err := Resendable(sv, now); err != nil {
			return err
		}
		dbCfg, err := db.GetConfig(ctx, tx, tenantID)
		if err != nil {
			return fmt.Errorf("load config: %w", err)
		}
		cfg := configOf(dbCfg)
		if !cfg.Enabled {
			return errs.New(errs.Conflict, "CSAT surveys are disabled for this account")
		}
		if optedOut, err := s.optedOut(ctx, tx, tenantID, sv.ContactEmail); err != nil {
			return err
		} else if optedOut {
			return errs.New(errs.Conflict, "this contact unsubscribed from surveys")
		}
		unsub := NewToken(tenantID)
		if msg, err = s.render(ctx, tx, sv, dbCfg, token, unsub); err != nil {
			return err
		}
		exp := ExpiresAt(now, cfg)
		sv.ExpiresAt, sv.TokenHash, sv.UnsubHash = &exp, secret.Hash(token), secret.Hash(unsub)
		if err := db.UpdateLockedSurvey(ctx, tx, sv, db.StatusSent, "expires_at", "token_hash", "unsubscribe_hash"); err != nil {
			return err
		}
		emit(s.surveyEvent(EventResent, sv))
		out = sv
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resend survey: %w", err)
	}
	// The expiry task already queued finds the later expires_at and does
	// nothing; this one expires the new link.
	if err := s.Jobs.ScheduleExpire(ctx, tenantID, out.ID, *out.ExpiresAt); err != nil {
		s.log().Warn("enqueue expiry failed; the sweep will expire it", "tenant_id", tenantID, "survey_id", out.ID, "err", err)
	}
	if err := s.Mailer.Send(ctx, msg, nil); err != nil {
		return nil, fmt.Errorf("resend survey email: %w", err)
	}
	return out, nil
}

// Cancel stops a pending survey of the context's tenant from ever being
// sent. It becomes expired (of the four statuses, the one that means "ended
// without a response"), and emits csat.survey.expired. The queued send task
// finds it no longer pending and does nothing.
func (s *Service) Cancel(ctx context.Context, id string) (*db.Survey, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWrite)
	if err != nil {
		return nil, err
	}
	var out *db.Survey
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		// Waits for a send in progress; then the survey is sent, not pending.
		sv, err := db.GetSurveyForUpdate(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if err := Cancelable(sv); err != nil {
			return err
		}
		sv.Status = db.StatusExpired
		if err := db.UpdateLockedSurvey(ctx, tx, sv, db.StatusPending, "status"); err != nil {
			return err
		}
		emit(s.surveyEvent(EventExpired, sv))
		out = sv
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cancel survey: %w", err)
	}
	return out, nil
}
