package graph_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

const surveyFields = `id conversationId contactEmail contactName rating feedback status scheduledFor sentAt respondedAt expiresAt createdAt agentId teamId channel`

// TestScheduleAndConfig goes through gqlgen's client: intake is idempotent
// per conversation like REST, config reads and partial updates.
func TestScheduleAndConfig(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, key := s.NewTenant(t, "Acme")
	c := gqlClient(s, key)

	type surveyResp struct {
		ID, ConversationID, ContactEmail, Status, CreatedAt string
		ContactName, AgentID, TeamID, Channel, SentAt       *string
		ScheduledFor                                        string
		Rating                                              *int
		Feedback, RespondedAt, ExpiresAt                    *string
	}
	var resp struct{ ScheduleSurvey surveyResp }
	q := `mutation($in: ScheduleSurveyInput!) { scheduleSurvey(input: $in) { ` + surveyFields + ` } }`
	in := map[string]any{"conversationId": "conv-1", "contactEmail": "jane@example.com", "contactName": "Jane",
		"resolvedAt": "2026-01-02T10:00:00Z", "agentId": "ag1", "channel": "email"}
	c.MustPost(q, &resp, client.Var("in", in))
	sv := resp.ScheduleSurvey
	if sv.Status != "PENDING" || sv.ConversationID != "conv-1" || sv.ScheduledFor != "2026-01-02T12:00:00Z" ||
		sv.ContactName == nil || *sv.ContactName != "Jane" || sv.TeamID != nil || sv.SentAt != nil {
		t.Fatalf("scheduled %+v", sv)
	}
	first := sv.ID
	in["contactEmail"] = "other@example.com"
	c.MustPost(q, &resp, client.Var("in", in))
	if resp.ScheduleSurvey.ID != first || resp.ScheduleSurvey.ContactEmail != "jane@example.com" {
		t.Fatalf("repeat intake made %+v, want the first survey", resp.ScheduleSurvey)
	}

	var cfg struct {
		UpdateCsatConfig struct {
			Enabled                            bool
			SurveyDelayHours, SurveyExpiryDays int
		}
	}
	c.MustPost(`mutation { updateCsatConfig(input: {surveyDelayHours: 4}) { enabled surveyDelayHours surveyExpiryDays } }`, &cfg)
	if !cfg.UpdateCsatConfig.Enabled || cfg.UpdateCsatConfig.SurveyDelayHours != 4 || cfg.UpdateCsatConfig.SurveyExpiryDays != 7 {
		t.Fatalf("config %+v", cfg)
	}
	// The same config as REST shows.
	rest := s.Do(t, "GET", "/api/v1/csat/config", key, nil).Map(t)
	if rest["survey_delay_hours"] != float64(4) {
		t.Fatalf("REST config %v", rest)
	}
	c.MustPost(`mutation { updateCsatConfig(input: {enabled: false}) { enabled } }`, &cfg)
	err := c.Post(q, &resp, client.Var("in", map[string]any{"conversationId": "conv-2", "contactEmail": "a@example.com"}))
	if err == nil || !strings.Contains(err.Error(), "BAD_USER_INPUT") || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("intake while disabled: %v", err)
	}
}

// TestResendAndCancel: a resend mails a fresh link and the old one stops
// working; a cancelled survey is never sent.
func TestResendAndCancel(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	ctx := context.Background()

	due := time.Now().Add(-3 * time.Hour)
	sv := intake(t, s, tenantID, "conv-1", func(in *survey.IntakeInput) { in.ResolvedAt = &due })
	if _, err := s.App.Svc.Send(ctx, tenantID, sv.ID); err != nil {
		t.Fatal(err)
	}
	oldMail := s.SMTP.WaitFor(t, "conv-1@example.com", 1, 15*time.Second)[0]
	oldToken := tokenIn(t, oldMail)
	before := loadSurvey(t, s, tenantID, sv.ID)

	d := mustGQL(t, s, key, `mutation($id: ID!) { resendSurvey(id: $id) { id status sentAt expiresAt } }`, map[string]any{"id": sv.ID})
	if dig(d, "resendSurvey", "status") != "SENT" {
		t.Fatalf("resend answered %v", d)
	}
	mails := s.SMTP.WaitFor(t, "conv-1@example.com", 2, 15*time.Second)
	newToken := tokenIn(t, mails[1])
	if newToken == oldToken {
		t.Fatal("the resent email carries the old token")
	}
	after := loadSurvey(t, s, tenantID, sv.ID)
	if !after.SentAt.Equal(*before.SentAt) || !after.ExpiresAt.After(*before.ExpiresAt) {
		t.Fatalf("sent_at %v→%v, expires_at %v→%v", before.SentAt, after.SentAt, before.ExpiresAt, after.ExpiresAt)
	}
	if res := s.Do(t, "GET", "/api/v1/csat/rate?token="+url.QueryEscape(oldToken)+"&rating=5", "", nil); res.Status != 404 {
		t.Fatalf("old link answered %d", res.Status)
	}
	if res := s.Do(t, "GET", "/api/v1/csat/rate?token="+url.QueryEscape(newToken)+"&rating=5", "", nil); res.Status != 200 {
		t.Fatalf("new link answered %d %s", res.Status, res.Body)
	}
	// Answered: no more resends.
	r := gql(t, s, key, `mutation($id: ID!) { resendSurvey(id: $id) { id } }`, map[string]any{"id": sv.ID})
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("resend of an answered survey: %+v", r.Errors)
	}
	r = gql(t, s, key, `mutation($id: ID!) { cancelSurvey(id: $id) { id } }`, map[string]any{"id": sv.ID})
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("cancel of an answered survey: %+v", r.Errors)
	}

	// Cancel: pending becomes expired and the send does nothing.
	later := intake(t, s, tenantID, "conv-2") // due in two hours
	d = mustGQL(t, s, key, `mutation($id: ID!) { cancelSurvey(id: $id) { id status } }`, map[string]any{"id": later.ID})
	if dig(d, "cancelSurvey", "status") != "EXPIRED" {
		t.Fatalf("cancel answered %v", d)
	}
	setSurvey(t, s, tenantID, later.ID, "scheduled_for = ?", time.Now().Add(-time.Minute)) // due now
	out, err := s.App.Svc.Send(ctx, tenantID, later.ID)
	if err != nil || out != survey.OutcomeNoop {
		t.Fatalf("send after cancel: %v %v", out, err)
	}
	if n := len(s.SMTP.To("conv-2@example.com")); n != 0 {
		t.Fatalf("a cancelled survey was emailed %d times", n)
	}
	r = gql(t, s, key, `mutation($id: ID!) { cancelSurvey(id: $id) { id } }`, map[string]any{"id": later.ID})
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("second cancel: %+v", r.Errors)
	}
}

func tokenIn(t *testing.T, e testenv.Email) string {
	t.Helper()
	for _, l := range e.Links() {
		if u, err := url.Parse(l); err == nil && u.Query().Get("token") != "" {
			return u.Query().Get("token")
		}
	}
	t.Fatalf("no rate link in email:\n%s", e.Text)
	return ""
}

func loadSurvey(t *testing.T, s *testenv.Service, tenantID, id string) *db.Survey {
	t.Helper()
	sv, err := db.GetSurvey(context.Background(), s.Admin, tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return sv
}
