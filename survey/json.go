package survey

import (
	"time"

	"github.com/csat/csat/db"
)

// SurveyJSON is a survey in the documented REST shape (also the webhook
// payload). The first eight fields are the documented ones.
type SurveyJSON struct {
	ID             string  `json:"id"`
	ConversationID string  `json:"conversation_id"`
	ContactEmail   string  `json:"contact_email"`
	Rating         *int    `json:"rating"`
	Feedback       *string `json:"feedback"`
	Status         string  `json:"status"`
	SentAt         *string `json:"sent_at"`
	RespondedAt    *string `json:"responded_at"`
	ContactName    *string `json:"contact_name"`
	AgentID        *string `json:"agent_id"`
	TeamID         *string `json:"team_id"`
	Channel        *string `json:"channel"`
	Locale         *string `json:"locale"`
	ResolvedAt     string  `json:"resolved_at"`
	ScheduledFor   string  `json:"scheduled_for"`
	ExpiresAt      *string `json:"expires_at"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
	Flagged        bool    `json:"flagged"`
}

// TimeJSON formats t as RFC 3339 in UTC with a Z.
func TimeJSON(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func timePtr(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := TimeJSON(*t)
	return &s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ToJSON renders a survey in the REST shape.
func ToJSON(s *db.Survey) SurveyJSON {
	return SurveyJSON{
		ID:             s.ID,
		ConversationID: s.ConversationID,
		ContactEmail:   s.ContactEmail,
		Rating:         s.Rating,
		Feedback:       s.Feedback,
		Status:         s.Status,
		SentAt:         timePtr(s.SentAt),
		RespondedAt:    timePtr(s.RespondedAt),
		ContactName:    strPtr(s.ContactName),
		AgentID:        strPtr(s.AgentID),
		TeamID:         strPtr(s.TeamID),
		Channel:        strPtr(s.Channel),
		Locale:         strPtr(s.Locale),
		ResolvedAt:     TimeJSON(s.ResolvedAt),
		ScheduledFor:   TimeJSON(s.ScheduledFor),
		ExpiresAt:      timePtr(s.ExpiresAt),
		CreatedAt:      TimeJSON(s.CreatedAt),
		UpdatedAt:      TimeJSON(s.UpdatedAt),
		Flagged:        s.Flagged,
	}
}

// ConfigJSON is the documented config shape; the fields after the first
// three are optional extensions (what the customer sees).
type ConfigJSON struct {
	Enabled          bool `json:"enabled"`
	SurveyDelayHours int  `json:"survey_delay_hours"`
	SurveyExpiryDays int  `json:"survey_expiry_days"`
	CustomerJSON
}

// ConfigToJSON renders a config in the REST shape.
func ConfigToJSON(c *db.Config) ConfigJSON {
	return ConfigJSON{Enabled: c.Enabled, SurveyDelayHours: c.SurveyDelayHours, SurveyExpiryDays: c.SurveyExpiryDays,
		CustomerJSON: customerToJSON(c)}
}
