package survey

import (
	"strconv"
	"time"
	"unicode/utf8"

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

// AppendJSON appends s in the REST shape to b: byte for byte what
// encoding/json makes of ToJSON(s), HTML escaping included, without its
// reflection and the pointers ToJSON allocates. A list page is 20 of
// these per request (json_test.go holds the two encoders together).
func AppendJSON(b []byte, s *db.Survey) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"conversation_id":`...)
	b = appendString(b, s.ConversationID)
	b = append(b, `,"contact_email":`...)
	b = appendString(b, s.ContactEmail)
	b = append(b, `,"rating":`...)
	if s.Rating == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*s.Rating), 10)
	}
	b = append(b, `,"feedback":`...)
	if s.Feedback == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *s.Feedback)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, s.Status)
	b = append(b, `,"sent_at":`...)
	b = appendTimePtr(b, s.SentAt)
	b = append(b, `,"responded_at":`...)
	b = appendTimePtr(b, s.RespondedAt)
	b = append(b, `,"contact_name":`...)
	b = appendOptional(b, s.ContactName)
	b = append(b, `,"agent_id":`...)
	b = appendOptional(b, s.AgentID)
	b = append(b, `,"team_id":`...)
	b = appendOptional(b, s.TeamID)
	b = append(b, `,"channel":`...)
	b = appendOptional(b, s.Channel)
	b = append(b, `,"locale":`...)
	b = appendOptional(b, s.Locale)
	b = append(b, `,"resolved_at":`...)
	b = appendTime(b, s.ResolvedAt)
	b = append(b, `,"scheduled_for":`...)
	b = appendTime(b, s.ScheduledFor)
	b = append(b, `,"expires_at":`...)
	b = appendTimePtr(b, s.ExpiresAt)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, s.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, s.UpdatedAt)
	b = append(b, `,"flagged":`...)
	b = strconv.AppendBool(b, s.Flagged)
	return append(b, '}')
}

// appendTime is TimeJSON as a JSON string (its characters need no escaping).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendTimePtr is timePtr's JSON: null for nil or the zero time.
func appendTimePtr(b []byte, t *time.Time) []byte {
	if t == nil || t.IsZero() {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}

// appendOptional is strPtr's JSON: null for "".
func appendOptional(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on (its
// default): ", \ and control characters escaped, <, > and & as \u003c,
// \u003e, \u0026, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
