package survey

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
)

// Event types; the csat.* ones are also webhook event types.
const (
	EventScheduled     = "csat.survey.scheduled"
	EventSent          = "csat.survey.sent"
	EventCompleted     = "csat.survey.completed"
	EventExpired       = "csat.survey.expired"
	EventConfigUpdated = "csat.config.updated"
	// EventRatingCleared is internal (live updates only): the link-scanner
	// rule cleared a rating.
	EventRatingCleared = "survey.rating_cleared"
)

// Event is a change to a tenant's data.
type Event struct {
	Type     string
	TenantID string
	At       time.Time
	Survey   *db.Survey // survey events
	Config   *db.Config // config events
}

// EventSink hears about changes. InTx runs inside the transaction that
// made the change (an outbox writes there, so the event commits with it);
// AfterCommit runs once it committed (live updates).
type EventSink interface {
	InTx(ctx context.Context, tx bun.IDB, ev Event) error
	AfterCommit(ctx context.Context, ev Event)
}

// ManySink is an EventSink that can record all of a transaction's events
// in one call (one lookup for a batch of sends instead of one per survey).
type ManySink interface {
	EventSink
	InTxMany(ctx context.Context, tx bun.IDB, evs []Event) error
}
