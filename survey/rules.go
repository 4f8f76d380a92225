// Package survey is the domain core: the rules of a survey's life
// (validation, status transitions, windows) and the Service that both APIs
// and the workers call.
package survey

import (
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
)

// Limits on what callers send.
const (
	MaxFeedback  = 5000 // characters
	MaxIDLength  = 255
	MaxEmailLen  = 254
	ScannerWin   = 30 * time.Second
	ScannerLimit = 3 // different ratings within ScannerWin that mean a link scanner
	MaxFutureRes = time.Hour
)

// neverClicked marks a rating never clicked in Survey.LastClicks.
var neverClicked = time.Unix(0, 0).UTC()

// RecordClick records a one-click rating at the given time in a survey's
// last clicks (db.Survey.LastClicks) and returns them with how many
// different ratings were clicked within ScannerWin up to it, this one
// included: the scanner rule's count. The different ratings clicked since
// a moment are those whose last click is at or after it, so five times
// answer what a log of every click would. A click stamped earlier than one
// already kept (another process's clock) keeps the later time.
func RecordClick(last []time.Time, rating int, at time.Time) ([]time.Time, int) {
	out := make([]time.Time, 5)
	for i := range out {
		out[i] = neverClicked
		if i < len(last) {
			out[i] = last[i]
		}
	}
	if at.After(out[rating-1]) {
		out[rating-1] = at.UTC()
	}
	since, n := at.Add(-ScannerWin), 0
	for _, t := range out {
		if !t.Before(since) {
			n++
		}
	}
	return out, n
}

// Config is a tenant's CSAT configuration.
type Config struct {
	Enabled          bool
	SurveyDelayHours int
	SurveyExpiryDays int
}

// DefaultConfig is what a new tenant starts with.
var DefaultConfig = Config{Enabled: true, SurveyDelayHours: 2, SurveyExpiryDays: 7}

// ConfigPatch is a partial config update: nil fields keep their value.
type ConfigPatch struct {
	Enabled          *bool
	SurveyDelayHours *int
	SurveyExpiryDays *int
	Customer         // branding, templates and locale (customer.go)
}

// Validate checks every given field.
func (p ConfigPatch) Validate() error {
	bad := map[string]string{}
	if p.SurveyDelayHours != nil && (*p.SurveyDelayHours < 1 || *p.SurveyDelayHours > 72) {
		bad["survey_delay_hours"] = "must be an integer from 1 to 72"
	}
	if p.SurveyExpiryDays != nil && (*p.SurveyExpiryDays < 1 || *p.SurveyExpiryDays > 30) {
		bad["survey_expiry_days"] = "must be an integer from 1 to 30"
	}
	p.Customer.validate(bad)
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	return nil
}

// Apply writes the given fields into c.
func (p ConfigPatch) Apply(c *db.Config) {
	if p.Enabled != nil {
		c.Enabled = *p.Enabled
	}
	if p.SurveyDelayHours != nil {
		c.SurveyDelayHours = *p.SurveyDelayHours
	}
	if p.SurveyExpiryDays != nil {
		c.SurveyExpiryDays = *p.SurveyExpiryDays
	}
	p.Customer.apply(c)
}

// IntakeInput is a resolved conversation reported to us.
type IntakeInput struct {
	ConversationID string
	ContactEmail   string
	ContactName    string
	ResolvedAt     *time.Time // nil means now
	AgentID        string
	TeamID         string
	Channel        string
	Locale         string
}

// Normalize trims the input and checks it; now bounds resolved_at.
func (in *IntakeInput) Normalize(now time.Time) error {
	bad := map[string]string{}
	in.ConversationID = strings.TrimSpace(in.ConversationID)
	in.ContactEmail = strings.TrimSpace(in.ContactEmail)
	in.ContactName = strings.TrimSpace(in.ContactName)
	if in.ConversationID == "" {
		bad["conversation_id"] = "is required"
	} else if msg := checkText(in.ConversationID, MaxIDLength); msg != "" {
		bad["conversation_id"] = msg
	}
	if in.ContactEmail == "" {
		bad["contact_email"] = "is required"
	} else if !ValidEmail(in.ContactEmail) {
		bad["contact_email"] = "must be a valid email address"
	}
	for field, v := range map[string]string{"contact_name": in.ContactName, "agent_id": in.AgentID, "team_id": in.TeamID, "channel": in.Channel} {
		if msg := checkText(v, MaxIDLength); msg != "" {
			bad[field] = msg
		}
	}
	if msg := checkText(in.Locale, 35); msg != "" {
		bad["locale"] = msg
	}
	if in.ResolvedAt == nil {
		t := now
		in.ResolvedAt = &t
	} else if in.ResolvedAt.After(now.Add(MaxFutureRes)) {
		bad["resolved_at"] = "must not be more than an hour in the future"
	} else if in.ResolvedAt.Year() < 2000 {
		bad["resolved_at"] = "must be after the year 2000"
	}
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	t := in.ResolvedAt.UTC()
	in.ResolvedAt = &t
	return nil
}

// checkText returns why s is not acceptable text of at most max
// characters, or "".
func checkText(s string, max int) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.ContainsRune(s, 0):
		return "must not contain NUL characters"
	case utf8.RuneCountInString(s) > max:
		return "must be at most " + strconv.Itoa(max) + " characters"
	}
	return ""
}

// ValidEmail reports whether s is a single bare address like a@b.example.
func ValidEmail(s string) bool {
	if len(s) > MaxEmailLen || checkText(s, MaxEmailLen) != "" {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".") && !strings.ContainsAny(s, " \t\r\n<>")
}

// ValidRating reports whether r is a rating from 1 to 5.
func ValidRating(r int) bool { return r >= 1 && r <= 5 }

// ParseRating parses a rating as sent in a query string: exactly one digit
// from 1 to 5.
func ParseRating(s string) (int, error) {
	if len(s) != 1 || s[0] < '1' || s[0] > '5' {
		return 0, errs.New(errs.Invalid, "rating must be an integer from 1 to 5")
	}
	return int(s[0] - '0'), nil
}

// ParseRatingJSON parses a rating as sent in JSON: a number 1..5, not a
// string, not a fraction.
func ParseRatingJSON(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, errs.Validation(map[string]string{"rating": "is required"})
	}
	if s[0] == '"' {
		return 0, errs.Validation(map[string]string{"rating": "must be a number, not a string"})
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, errs.Validation(map[string]string{"rating": "must be an integer from 1 to 5"})
	}
	if f != float64(int(f)) || !ValidRating(int(f)) {
		return 0, errs.Validation(map[string]string{"rating": "must be an integer from 1 to 5"})
	}
	return int(f), nil
}

// ValidateFeedback checks optional feedback text.
func ValidateFeedback(s string) error {
	if msg := checkText(s, MaxFeedback); msg != "" {
		return errs.Validation(map[string]string{"feedback": msg})
	}
	return nil
}

// transitions lists the status changes a survey may make.
var transitions = map[string][]string{
	db.StatusPending:   {db.StatusSent, db.StatusExpired},
	db.StatusSent:      {db.StatusCompleted, db.StatusExpired, db.StatusSent},
	db.StatusCompleted: {db.StatusCompleted, db.StatusSent}, // re-rating; scanner reset
	db.StatusExpired:   {},
}

// CanTransition reports whether a survey may go from one status to another.
func CanTransition(from, to string) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ScheduledFor is when the survey for a conversation resolved at t is sent.
func ScheduledFor(resolvedAt time.Time, c Config) time.Time {
	return resolvedAt.Add(time.Duration(c.SurveyDelayHours) * time.Hour)
}

// ExpiresAt is when a link sent at t stops working.
func ExpiresAt(sentAt time.Time, c Config) time.Time {
	return sentAt.Add(time.Duration(c.SurveyExpiryDays) * 24 * time.Hour)
}

// WindowPassed reports whether a survey that was never sent is too late to
// send: its whole window (send time plus expiry) is over.
func WindowPassed(scheduledFor time.Time, c Config, now time.Time) bool {
	return !now.Before(ExpiresAt(scheduledFor, c))
}

// LinkExpired reports whether the survey's public links no longer work.
func LinkExpired(s *db.Survey, now time.Time) bool {
	return s.Status == db.StatusExpired || (s.ExpiresAt != nil && !now.Before(*s.ExpiresAt))
}

// Answerable reports whether a survey's link may record a rating now.
func Answerable(s *db.Survey, now time.Time) error {
	if LinkExpired(s, now) {
		return errs.ErrExpired
	}
	if s.Status != db.StatusSent && s.Status != db.StatusCompleted {
		return errs.ErrNotFound
	}
	return nil
}

func configOf(c *db.Config) Config {
	return Config{Enabled: c.Enabled, SurveyDelayHours: c.SurveyDelayHours, SurveyExpiryDays: c.SurveyExpiryDays}
}
