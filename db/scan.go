package db

import (
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// The survey lists (REST's page, GraphQL's connection) select the columns
// they show and scan them by hand. Bun's reflection scan of all 24 columns
// was most of a list request's CPU: each value went through database/sql's
// conversion into bun's per-field scanner, the link hashes were decoded
// from hex only to be dropped, and the lease marks parsed as times nobody
// reads.

// surveyFields maps each column a list may select to its Survey field.
var surveyFields = map[string]func(*Survey) any{
	"id":              func(s *Survey) any { return &s.ID },
	"conversation_id": func(s *Survey) any { return &s.ConversationID },
	"contact_email":   func(s *Survey) any { return &s.ContactEmail },
	"contact_name":    func(s *Survey) any { return &s.ContactName },
	"agent_id":        func(s *Survey) any { return &s.AgentID },
	"team_id":         func(s *Survey) any { return &s.TeamID },
	"channel":         func(s *Survey) any { return &s.Channel },
	"locale":          func(s *Survey) any { return &s.Locale },
	"status":          func(s *Survey) any { return &s.Status },
	"rating":          func(s *Survey) any { return &s.Rating },
	"feedback":        func(s *Survey) any { return &s.Feedback },
	"flagged":         func(s *Survey) any { return &s.Flagged },
	"resolved_at":     func(s *Survey) any { return &s.ResolvedAt },
	"scheduled_for":   func(s *Survey) any { return &s.ScheduledFor },
	"sent_at":         func(s *Survey) any { return &s.SentAt },
	"expires_at":      func(s *Survey) any { return &s.ExpiresAt },
	"responded_at":    func(s *Survey) any { return &s.RespondedAt },
	"created_at":      func(s *Survey) any { return &s.CreatedAt },
	"updated_at":      func(s *Survey) any { return &s.UpdatedAt },
}

// ShownColumns are the survey columns the APIs show: all but the tenant
// (the caller's, set without reading it), the link hashes and the send's
// lease marks. A list selects these unless told fewer.
var ShownColumns = []string{
	"id", "conversation_id", "contact_email", "contact_name", "agent_id", "team_id", "channel", "locale",
	"status", "rating", "feedback", "flagged", "resolved_at", "scheduled_for", "sent_at", "expires_at",
	"responded_at", "created_at", "updated_at",
}

// KnownColumn reports whether a list can select col.
func KnownColumn(col string) bool {
	_, ok := surveyFields[col]
	return ok
}

// surveyScanner reads rows of the given survey columns followed by extra
// columns, reusing its buffers from row to row.
type surveyScanner struct {
	fields []func(*Survey) any
	vals   []any // the row's values as the driver returns them
	ptrs   []any // &vals[i], what rows.Scan fills
}

func newSurveyScanner(cols []string, extra int) (*surveyScanner, error) {
	sc := &surveyScanner{fields: make([]func(*Survey) any, len(cols)),
		vals: make([]any, len(cols)+extra), ptrs: make([]any, len(cols)+extra)}
	for i, c := range cols {
		f, ok := surveyFields[c]
		if !ok {
			return nil, fmt.Errorf("db: no survey column %q to list", c)
		}
		sc.fields[i] = f
	}
	for i := range sc.vals {
		sc.ptrs[i] = &sc.vals[i]
	}
	return sc, nil
}

// scan reads the current row into s (which should be zero: NULL leaves a
// field as it is) and returns the extra columns' values.
func (sc *surveyScanner) scan(rows *sql.Rows, s *Survey) ([]any, error) {
	// Scanning into *any hands over the driver's value without conversion.
	if err := rows.Scan(sc.ptrs...); err != nil {
		return nil, err
	}
	for i, f := range sc.fields {
		if err := assign(f(s), sc.vals[i]); err != nil {
			return nil, err
		}
	}
	return sc.vals[len(sc.fields):], nil
}

// assign stores a driver value (string, int64, bool, time.Time or nil for
// NULL) in a field, as bun would: NULL is the zero value.
func assign(dst, v any) error {
	if v == nil {
		return nil
	}
	ok := true
	switch d := dst.(type) {
	case *string:
		*d, ok = v.(string)
	case **string:
		var s string
		s, ok = v.(string)
		*d = &s
	case *bool:
		*d, ok = v.(bool)
	case **int:
		var n int64
		n, ok = v.(int64)
		i := int(n)
		*d = &i
	case *time.Time:
		*d, ok = v.(time.Time)
	case **time.Time:
		var t time.Time
		t, ok = v.(time.Time)
		*d = &t
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("db: cannot scan %T into %T", v, dst)
	}
	return nil
}

// asInt reads an integer value: int64, or the text of a numeric (which
// the driver returns as bytes), such as a sum of bigints.
func asInt(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case []byte:
		return strconv.ParseInt(string(v), 10, 64)
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("db: cannot scan %T as an integer", v)
}

// scanSurveys reads every row of cols into surveys of tenantID; extra
// columns after them, when each is set, go to each with their values.
func scanSurveys(rows *sql.Rows, tenantID string, cols []string, limit, extra int, each func([]any) error) ([]Survey, error) {
	defer rows.Close()
	sc, err := newSurveyScanner(cols, extra)
	if err != nil {
		return nil, err
	}
	out := make([]Survey, 0, limit)
	for rows.Next() {
		out = append(out, Survey{TenantID: tenantID})
		vals, err := sc.scan(rows, &out[len(out)-1])
		if err == nil && each != nil {
			err = each(vals)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}
