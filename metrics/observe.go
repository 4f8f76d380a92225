package metrics

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/csat/csat/mail"
	"github.com/csat/csat/survey"
)

// SurveySink counts survey lifecycle events once they committed; it is a
// survey.EventSink. A rolled-back change is never counted.
type SurveySink struct{ M *Metrics }

var _ survey.EventSink = SurveySink{}

// surveyEvents maps event types to the csat_surveys_total event label.
var surveyEvents = map[string]string{
	survey.EventScheduled: "scheduled",
	survey.EventSent:      "sent",
	survey.EventCompleted: "completed",
	survey.EventExpired:   "expired",
}

// InTx implements survey.EventSink; metrics wait for the commit.
func (SurveySink) InTx(context.Context, bun.IDB, survey.Event) error { return nil }

// AfterCommit implements survey.EventSink.
func (s SurveySink) AfterCommit(_ context.Context, ev survey.Event) {
	if s.M == nil {
		return
	}
	if label, ok := surveyEvents[ev.Type]; ok {
		s.M.Surveys.WithLabelValues(label).Inc()
	}
}

// Sender counts the emails a mail.Sender delivered and failed to deliver.
type Sender struct {
	mail.Sender
	M *Metrics
}

// Send implements mail.Sender.
func (s Sender) Send(ctx context.Context, m mail.Message, h *mail.Handoff) error {
	err := s.Sender.Send(ctx, m, h)
	if s.M != nil {
		result := "sent"
		if err != nil {
			result = "failed"
		}
		s.M.Emails.WithLabelValues(result).Inc()
	}
	return err
}

// SweepRun records one sweep; it fits jobs.Sweeper.OnRun.
func (m *Metrics) SweepRun(res survey.SweepResult, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.SweepRuns.WithLabelValues(result).Inc()
	m.SweepEnqueued.Add(float64(res.Enqueued))
	m.SweepExpired.Add(float64(res.Expired))
}
