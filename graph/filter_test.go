package graph_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

// TestSurveysFilter checks every SurveyFilter field, alone and combined,
// on edges and totalCount.
func TestSurveysFilter(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	day := time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)
	type row struct {
		conv, status, agent, team, channel, name string
		sent                                     time.Duration // after day; 0: never sent
		rating                                   int
		feedback                                 string
	}
	rows := []row{
		{conv: "p1", status: "pending", agent: "ag1", team: "t1", channel: "email", name: "Jane Doe"},
		{conv: "s1", status: "sent", agent: "ag1", team: "t2", channel: "chat", sent: 1 * time.Hour},
		{conv: "c1", status: "completed", agent: "ag2", team: "t1", channel: "email", sent: 2 * time.Hour, rating: 5, feedback: "great"},
		{conv: "c2", status: "completed", agent: "ag2", team: "t2", channel: "chat", sent: 26 * time.Hour, rating: 2},
		{conv: "c3", status: "completed", agent: "ag1", team: "t1", channel: "phone", sent: 50 * time.Hour, rating: 4, feedback: "ok 100%"},
		{conv: "e1", status: "expired", agent: "ag3", team: "t3", channel: "email", sent: 3 * time.Hour, name: "Bob_Smith"},
	}
	for _, r := range rows {
		sv := intake(t, s, tenantID, r.conv, func(in *survey.IntakeInput) {
			in.AgentID, in.TeamID, in.Channel, in.ContactName = r.agent, r.team, r.channel, r.name
		})
		if r.status != "pending" {
			setSurvey(t, s, tenantID, sv.ID, "status = ?, sent_at = ?", r.status, day.Add(r.sent))
		}
		if r.rating > 0 {
			setSurvey(t, s, tenantID, sv.ID, "rating = ?, responded_at = ?", r.rating, day.Add(r.sent+time.Hour))
		}
		if r.feedback != "" {
			setSurvey(t, s, tenantID, sv.ID, "feedback = ?", r.feedback)
		}
	}
	// Another tenant's matching surveys never show.
	other, _ := s.NewTenant(t, "Other")
	intake(t, s, other, "c1", func(in *survey.IntakeInput) { in.AgentID = "ag2" })

	cases := []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"none", nil, []string{"p1", "s1", "c1", "c2", "c3", "e1"}},
		{"status", map[string]any{"status": []string{"COMPLETED", "EXPIRED"}}, []string{"c1", "c2", "c3", "e1"}},
		{"status-one", map[string]any{"status": []string{"PENDING"}}, []string{"p1"}},
		{"sent-from", map[string]any{"sentFrom": "2026-03-08T00:00:00Z"}, []string{"c2", "c3"}},
		{"sent-to-exclusive", map[string]any{"sentTo": "2026-03-07T02:00:00Z"}, []string{"s1"}},
		{"sent-range", map[string]any{"sentFrom": "2026-03-07T02:00:00Z", "sentTo": "2026-03-08T03:00:00Z"}, []string{"c1", "c2", "e1"}},
		{"rating", map[string]any{"rating": []int{4, 5}}, []string{"c1", "c3"}},
		{"agent", map[string]any{"agentId": "ag2"}, []string{"c1", "c2"}},
		{"team", map[string]any{"teamId": "t1"}, []string{"p1", "c1", "c3"}},
		{"channel", map[string]any{"channel": "chat"}, []string{"s1", "c2"}},
		{"has-feedback", map[string]any{"hasFeedback": true}, []string{"c1", "c3"}},
		{"no-feedback", map[string]any{"hasFeedback": false}, []string{"p1", "s1", "c2", "e1"}},
		{"search-conversation", map[string]any{"search": "C2"}, []string{"c2"}},
		{"search-email", map[string]any{"search": "e1@example"}, []string{"e1"}},
		{"search-name", map[string]any{"search": "jane"}, []string{"p1"}},
		{"search-wildcards-literal", map[string]any{"search": "b_s"}, []string{"e1"}},
		{"search-percent-literal", map[string]any{"search": "%"}, nil},
		{"combined", map[string]any{"agentId": "ag1", "teamId": "t1", "status": []string{"COMPLETED"}}, []string{"c3"}},
	}
	q := `query($f: SurveyFilter) { surveys(first: 100, filter: $f) { totalCount edges { node { conversationId } } } }`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustGQL(t, s, key, q, map[string]any{"f": c.filter})
			var got []string
			for _, e := range dig(d, "surveys", "edges").([]any) {
				got = append(got, dig(e, "node", "conversationId").(string))
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if total := dig(d, "surveys", "totalCount"); total != float64(len(want)) {
				t.Fatalf("totalCount %v, want %d", total, len(want))
			}
		})
	}

	bad := []struct {
		name   string
		filter map[string]any
	}{
		{"rating-out-of-range", map[string]any{"rating": []int{6}}},
		{"empty-sent-range", map[string]any{"sentFrom": "2026-03-08T00:00:00Z", "sentTo": "2026-03-07T00:00:00Z"}},
		{"bad-time", map[string]any{"sentFrom": "yesterday"}},
		{"long-search", map[string]any{"search": fmt.Sprintf("%0300d", 1)}},
	}
	for _, c := range bad {
		t.Run("bad-"+c.name, func(t *testing.T) {
			r := gql(t, s, key, q, map[string]any{"f": c.filter})
			if r.code() != "BAD_USER_INPUT" {
				t.Fatalf("got %d %+v, want BAD_USER_INPUT", r.Status, r.Errors)
			}
		})
	}
}
