package webhooks

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/survey"
)

// EventTypes are the events an endpoint can subscribe to.
var EventTypes = []string{
	survey.EventScheduled, survey.EventSent, survey.EventCompleted, survey.EventExpired, survey.EventConfigUpdated,
}

// IsEventType reports whether typ is delivered to webhooks (the internal
// survey.rating_cleared is not).
func IsEventType(typ string) bool { return slices.Contains(EventTypes, typ) }

// Limits on an endpoint.
const (
	MaxEndpoints      = 20
	MaxEventPatterns  = 20
	MaxDescriptionLen = 500
)

// NormalizePatterns validates an endpoint's event types: exact types or
// wildcards ending in ".*" (csat.*, csat.survey.*) that match at least
// one type. None given means every event (csat.*).
func NormalizePatterns(in []string) ([]string, error) {
	if len(in) == 0 {
		return []string{"csat.*"}, nil
	}
	if len(in) > MaxEventPatterns {
		return nil, errs.Validation(map[string]string{"event_types": fmt.Sprintf("at most %d entries", MaxEventPatterns)})
	}
	var out []string
	for _, p := range in {
		p = strings.TrimSpace(p)
		ok := false
		for _, t := range EventTypes {
			ok = ok || Match(p, t)
		}
		if !ok {
			return nil, errs.Validation(map[string]string{"event_types": fmt.Sprintf("%q matches no event type (known: %s, or a wildcard like csat.*)",
				p, strings.Join(EventTypes, ", "))})
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Match reports whether an event type pattern matches typ: equal, "*",
// or a prefix wildcard such as "csat.*" or "csat.survey.*".
func Match(pattern, typ string) bool {
	switch {
	case pattern == typ, pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(typ, pattern[:len(pattern)-1])
	}
	return false
}

// Subscribed reports whether any of patterns matches typ.
func Subscribed(patterns []string, typ string) bool {
	for _, p := range patterns {
		if Match(p, typ) {
			return true
		}
	}
	return false
}

// Payload is the JSON body of every delivery.
type Payload struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	TenantID  string `json:"tenant_id"`
	Data      any    `json:"data"`
}

// ConfigData is a config in the REST shape plus its updated_at, so
// receivers can discard stale events.
type ConfigData struct {
	survey.ConfigJSON
	UpdatedAt string `json:"updated_at"`
}

// payload renders an event for webhooks: the survey or config in its REST
// shape. created_at has sub-second precision to order events of one second.
func payload(id string, ev survey.Event) ([]byte, error) {
	p := Payload{ID: id, Type: ev.Type, CreatedAt: ev.At.UTC().Format(time.RFC3339Nano), TenantID: ev.TenantID}
	switch {
	case ev.Survey != nil:
		p.Data = survey.ToJSON(ev.Survey)
	case ev.Config != nil:
		p.Data = ConfigData{ConfigJSON: survey.ConfigToJSON(ev.Config), UpdatedAt: survey.TimeJSON(ev.Config.UpdatedAt)}
	default:
		return nil, fmt.Errorf("event %s has no survey or config", ev.Type)
	}
	return json.Marshal(p)
}
