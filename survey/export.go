package survey

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/tenants"
)

// ValidateFilter checks a survey list filter, whichever API built it:
// ratings 1-5, known statuses, sane text, a sent range that is not
// reversed. Errors name the REST query parameter.
func ValidateFilter(f db.SurveyFilter) error {
	bad := func(field, msg string) error {
		return &errs.Error{Code: errs.Invalid, Message: field + " " + msg, Fields: map[string]string{field: msg}}
	}
	for _, st := range f.Statuses {
		switch st {
		case db.StatusPending, db.StatusSent, db.StatusCompleted, db.StatusExpired:
		default:
			return bad("status", "must be one of pending, sent, completed, expired")
		}
	}
	for _, r := range f.Ratings {
		if !ValidRating(r) {
			return bad("rating", "must be integers from 1 to 5")
		}
	}
	for field, v := range map[string]string{"agent_id": f.AgentID, "team_id": f.TeamID, "channel": f.Channel, "search": f.Search} {
		if msg := checkText(v, MaxIDLength); msg != "" {
			return bad(field, msg)
		}
	}
	if f.SentFrom != nil && f.SentTo != nil && !f.SentFrom.Before(*f.SentTo) { // SentTo is exclusive
		return bad("from", "must not be after to")
	}
	return nil
}

// ExportBatch is how many surveys an export reads per query.
const ExportBatch = 500

// Export calls fn with every survey of the context's tenant that matches f,
// newest first. It reads them in keyset batches, so memory stays flat and
// no connection is held while fn writes to a slow client. A survey created
// during the export may be missed; none is repeated.
func (s *Service) Export(ctx context.Context, f db.SurveyFilter, fn func(*db.Survey) error) error {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return err
	}
	if err := ValidateFilter(f); err != nil {
		return err
	}
	after := ""
	for {
		var batch []db.Survey
		err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
			batch, err = db.ListSurveysBefore(ctx, idb, tenantID, f, after, ExportBatch)
			return err
		})
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < ExportBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}
