package db

import (
	"time"

	"github.com/uptrace/bun"
)

// Survey statuses as stored; the REST contract uses the same words.
const (
	StatusPending   = "pending"
	StatusSent      = "sent"
	StatusCompleted = "completed"
	StatusExpired   = "expired"
)

type Tenant struct {
	bun.BaseModel `bun:"table:tenants,alias:t"`

	ID        string    `bun:"id,pk"`
	Name      string    `bun:"name,notnull"`
	CreatedAt time.Time `bun:"created_at,nullzero,notnull,default:current_timestamp"`
}

type APIKey struct {
	bun.BaseModel `bun:"table:api_keys,alias:k"`

	TenantID   string     `bun:"tenant_id,pk"`
	ID         string     `bun:"id,pk"`
	Prefix     string     `bun:"prefix,notnull"`
	KeyHash    []byte     `bun:"key_hash,notnull"`
	Scopes     []string   `bun:"scopes,array,notnull"`
	CreatedAt  time.Time  `bun:"created_at,nullzero,notnull,default:current_timestamp"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

type Config struct {
	bun.BaseModel `bun:"table:csat_configs,alias:c"`

	TenantID         string    `bun:"tenant_id,pk"`
	Enabled          bool      `bun:"enabled,notnull"`
	SurveyDelayHours int       `bun:"survey_delay_hours,notnull"`
	SurveyExpiryDays int       `bun:"survey_expiry_days,notnull"`
	UpdatedAt        time.Time `bun:"updated_at,nullzero,notnull,default:current_timestamp"`

	// What the customer sees; empty means the default (see survey.Branding).
	BrandName     string   `bun:"brand_name,notnull"`
	LogoURL       string   `bun:"logo_url,notnull"`
	AccentColor   string   `bun:"accent_color,notnull"`
	DefaultLocale string   `bun:"default_locale,notnull"`
	EmailSubject  string   `bun:"email_subject,notnull"`
	EmailMessage  string   `bun:"email_message,notnull"`
	ButtonLabels  []string `bun:"button_labels,array"`
}

type Survey struct {
	bun.BaseModel `bun:"table:surveys,alias:s"`

	TenantID       string     `bun:"tenant_id,pk"`
	ID             string     `bun:"id,pk"`
	ConversationID string     `bun:"conversation_id,notnull"`
	ContactEmail   string     `bun:"contact_email,notnull"`
	ContactName    string     `bun:"contact_name,nullzero"`
	AgentID        string     `bun:"agent_id,nullzero"`
	TeamID         string     `bun:"team_id,nullzero"`
	Channel        string     `bun:"channel,nullzero"`
	Locale         string     `bun:"locale,nullzero"`
	Status         string     `bun:"status,notnull"`
	Rating         *int       `bun:"rating"`
	Feedback       *string    `bun:"feedback"`
	Flagged        bool       `bun:"flagged,notnull"`
	TokenHash      []byte     `bun:"token_hash"`
	UnsubHash      []byte     `bun:"unsubscribe_hash"`
	ResolvedAt     time.Time  `bun:"resolved_at,notnull"`
	ScheduledFor   time.Time  `bun:"scheduled_for,notnull"`
	SentAt         *time.Time `bun:"sent_at"`
	ClaimedAt      *time.Time `bun:"claimed_at"` // a send's lease (see the send_handoff migration)
	HandedAt       *time.Time `bun:"handed_at"`  // its email was handed to SMTP
	ExpiresAt      *time.Time `bun:"expires_at"`
	RespondedAt    *time.Time `bun:"responded_at"`
	// LastClicks is when each rating (1 first) was last clicked in the
	// email, the Unix epoch for one never clicked; nil before the first
	// click. The scanner rule reads it (survey.RecordClick).
	LastClicks []time.Time `bun:"last_clicks,array"`
	CreatedAt  time.Time   `bun:"created_at,notnull"`
	UpdatedAt  time.Time   `bun:"updated_at,notnull"`
}

// Unsubscribe is a contact's opt-out from one tenant's surveys.
type Unsubscribe struct {
	bun.BaseModel `bun:"table:csat_unsubscribes,alias:u"`

	TenantID  string    `bun:"tenant_id,pk"`
	Email     string    `bun:"email,pk"` // lower-cased
	SurveyID  string    `bun:"survey_id,nullzero"`
	CreatedAt time.Time `bun:"created_at,nullzero,notnull,default:current_timestamp"`
}
