package webhooks

import (
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
)

// EndpointJSON is an endpoint in its REST shape. Secret is set only in the
// answers of create and rotate-secret.
type EndpointJSON struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	EventTypes     []string `json:"event_types"`
	Enabled        bool     `json:"enabled"`
	FailingSince   *string  `json:"failing_since"`
	DisabledAt     *string  `json:"disabled_at"`
	DisabledReason *string  `json:"disabled_reason"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
	Secret         string   `json:"secret,omitempty"`
}

func timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := survey.TimeJSON(*t)
	return &s
}

// EndpointToJSON renders an endpoint (never its secret).
func EndpointToJSON(e *db.WebhookEndpoint) EndpointJSON {
	return EndpointJSON{
		ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled,
		FailingSince: timePtr(e.FailingSince), DisabledAt: timePtr(e.DisabledAt), DisabledReason: e.DisabledReason,
		CreatedAt: survey.TimeJSON(e.CreatedAt), UpdatedAt: survey.TimeJSON(e.UpdatedAt),
	}
}

// DeliveryJSON is a delivery in its REST shape.
type DeliveryJSON struct {
	ID               string  `json:"id"`
	EndpointID       string  `json:"endpoint_id"`
	EventID          string  `json:"event_id"`
	EventType        string  `json:"event_type"`
	Status           string  `json:"status"`
	Attempts         int     `json:"attempts"`
	LastResponseCode *int    `json:"last_response_code"`
	LastError        *string `json:"last_error"`
	LastAttemptAt    *string `json:"last_attempt_at"`
	NextAttemptAt    *string `json:"next_attempt_at"`
	DeliveredAt      *string `json:"delivered_at"`
	CreatedAt        string  `json:"created_at"`
}

// DeliveryToJSON renders a delivery.
func DeliveryToJSON(d *db.WebhookDelivery) DeliveryJSON {
	j := DeliveryJSON{
		ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
		Attempts: d.Attempts, LastResponseCode: d.LastResponseCode, LastError: d.LastError,
		LastAttemptAt: timePtr(d.LastAttemptAt), DeliveredAt: timePtr(d.DeliveredAt), CreatedAt: survey.TimeJSON(d.CreatedAt),
	}
	if d.Status == db.DeliveryPending {
		j.NextAttemptAt = timePtr(d.NextAttemptAt)
	}
	return j
}
