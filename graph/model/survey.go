package model

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/survey"
)

// SurveyStatus is a stored status (pending, sent, ...) that GraphQL shows
// as its enum (PENDING, SENT, ...).
type SurveyStatus string

// MarshalGQL writes the enum value.
func (s SurveyStatus) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(strings.ToUpper(string(s))))
}

// UnmarshalGQL reads the enum value.
func (s *SurveyStatus) UnmarshalGQL(v any) error {
	str, _ := v.(string)
	switch st := strings.ToLower(str); st {
	case db.StatusPending, db.StatusSent, db.StatusCompleted, db.StatusExpired:
		if str != strings.ToUpper(str) {
			break
		}
		*s = SurveyStatus(st)
		return nil
	}
	return errs.New(errs.Invalid, "%q is not a SurveyStatus", fmt.Sprint(v))
}

// Survey is a stored survey in the GraphQL shape: its fields are the
// db.Survey's, with empty optional text shown as null.
type Survey struct {
	db.Survey
}

// NewSurvey wraps a stored survey; nil stays nil.
func NewSurvey(sv *db.Survey) *Survey {
	if sv == nil {
		return nil
	}
	return &Survey{Survey: *sv}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// The optional fields, null when empty, and the status as its enum.

func (s *Survey) ContactName() *string     { return optional(s.Survey.ContactName) }
func (s *Survey) AgentID() *string         { return optional(s.Survey.AgentID) }
func (s *Survey) TeamID() *string          { return optional(s.Survey.TeamID) }
func (s *Survey) Channel() *string         { return optional(s.Survey.Channel) }
func (s *Survey) Status() SurveyStatus     { return SurveyStatus(s.Survey.Status) }
func (s *Survey) ScheduledFor() *time.Time { return &s.Survey.ScheduledFor }

// SurveyConnection is one page of surveys; Filter is kept for totalCount,
// which is resolved (and counted) only when asked for.
type SurveyConnection struct {
	Edges    []SurveyEdge
	PageInfo PageInfo
	Filter   db.SurveyFilter
}

// SurveyEdge is one survey and its cursor.
type SurveyEdge struct {
	Cursor string
	Node   *Survey
}

// PageInfo is Relay's page information.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

// NewConnection shapes a domain page as a connection.
func NewConnection(c survey.Connection, err error) (*SurveyConnection, error) {
	if err != nil {
		return nil, err
	}
	out := &SurveyConnection{
		Edges:    make([]SurveyEdge, len(c.Surveys)),
		PageInfo: PageInfo{HasNextPage: c.HasNext, HasPreviousPage: c.HasPrevious},
		Filter:   c.Filter,
	}
	for i := range c.Surveys {
		out.Edges[i] = SurveyEdge{Cursor: c.Cursors[i], Node: NewSurvey(&c.Surveys[i])}
	}
	if n := len(c.Cursors); n > 0 {
		out.PageInfo.StartCursor, out.PageInfo.EndCursor = &c.Cursors[0], &c.Cursors[n-1]
	}
	return out, nil
}
