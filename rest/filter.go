package rest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/survey"
)

// Query parameters each endpoint understands; any other is a 400, so a
// typo never silently widens a filter.
var (
	filterParams    = []string{"status", "from", "to", "rating", "agent_id", "team_id", "channel"}
	listParams      = append([]string{"limit", "offset"}, filterParams...)
	exportParams    = append([]string{"format"}, filterParams...)
	analyticsParams = []string{"start_date", "end_date", "timezone", "agent_id", "team_id", "channel"}
)

// checkParams refuses unknown and repeated query parameters.
func checkParams(q url.Values, known []string) error {
	for name, vals := range q {
		ok := false
		for _, k := range known {
			ok = ok || k == name
		}
		if !ok {
			return &errs.Error{Code: errs.Invalid, Message: "unknown query parameter " + strconv.Quote(name),
				Fields: map[string]string{name: "unknown parameter"}}
		}
		if len(vals) > 1 {
			return &errs.Error{Code: errs.Invalid, Message: name + " must be given once", Fields: map[string]string{name: "repeated"}}
		}
	}
	return nil
}

func invalidParam(name, msg string) error {
	return &errs.Error{Code: errs.Invalid, Message: name + " " + msg, Fields: map[string]string{name: msg}}
}

// parseFilter reads the list filters: status (comma list), from/to on
// sent_at (RFC 3339 times or YYYY-MM-DD dates in UTC, both ends included),
// rating (comma list of 1-5), agent_id, team_id, channel.
func parseFilter(q url.Values) (db.SurveyFilter, error) {
	var f db.SurveyFilter
	var err error
	if f.Statuses, err = parseStatuses(q.Get("status")); err != nil {
		return f, invalidParam("status", "must be one of pending, sent, completed, expired")
	}
	if v := q.Get("from"); v != "" {
		t, err := parseInstant(v, false)
		if err != nil {
			return f, invalidParam("from", "must be an RFC 3339 time or a YYYY-MM-DD date")
		}
		f.SentFrom = &t
	}
	if v := q.Get("to"); v != "" {
		t, err := parseInstant(v, true)
		if err != nil {
			return f, invalidParam("to", "must be an RFC 3339 time or a YYYY-MM-DD date")
		}
		f.SentTo = &t
	}
	if v := q.Get("rating"); v != "" {
		for _, s := range strings.Split(v, ",") {
			r, err := survey.ParseRating(strings.TrimSpace(s))
			if err != nil {
				return f, invalidParam("rating", "must be integers from 1 to 5, comma separated")
			}
			f.Ratings = append(f.Ratings, r)
		}
	}
	f.AgentID, f.TeamID, f.Channel = q.Get("agent_id"), q.Get("team_id"), q.Get("channel")
	return f, survey.ValidateFilter(f)
}

// parseInstant reads a time or a date. The filter's upper bound is
// exclusive, so an inclusive "to" moves past its day or its microsecond
// (the precision Postgres stores).
func parseInstant(v string, upper bool) (time.Time, error) {
	if len(v) == len(survey.DateLayout) {
		d, err := survey.ParseDate(v, time.UTC)
		if err != nil {
			return d, err
		}
		if upper {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, err
	}
	if upper {
		t = t.Truncate(time.Microsecond).Add(time.Microsecond)
	}
	return t.UTC(), nil
}

// ParseFilter reads the list filters from the query string.
func ParseFilter(r *http.Request) (db.SurveyFilter, error) {
	return parseFilter(r.URL.Query())
}
