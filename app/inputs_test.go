package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// errorCode checks the JSON error body and returns its code.
func errorCode(t *testing.T, r testenv.Response) string {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.JSON(t, &body)
	if body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("error body lacks code or message: %s", r.Body)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("error content type %q", r.Header.Get("Content-Type"))
	}
	return body.Error.Code
}

func countSurveys(t *testing.T, s *testenv.Service) int {
	t.Helper()
	n, err := s.Admin.NewSelect().Model((*db.Survey)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestBadInput(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	tenantID, key := s.NewTenant(t, "Acme")
	_, readOnly := s.NewTenant(t, "Reader", "csat:read")
	_, writeOnly := s.NewTenant(t, "Writer", "csat:write")
	id := intake(t, s, key, "conv-ok", "ok@example.com")["id"].(string)
	if _, err := s.App.Svc.Send(context.Background(), tenantID, id); err != nil {
		t.Fatal(err)
	}
	rate, _ := rateLinks(t, s.SMTP.WaitFor(t, "ok@example.com", 1, 0)[0])
	token := tokenOf(t, rate[0])
	before := countSurveys(t, s)

	big := `{"conversation_id": "big", "contact_email": "a@example.com", "contact_name": "` + strings.Repeat("x", 70000) + `"}`
	cases := []struct {
		name, method, path, key string
		body                    any
		status                  int
	}{
		{"intake-bad-email", "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "c", "contact_email": "not-an-email"}, 422},
		{"intake-missing-conversation", "POST", "/api/v1/csat/surveys", key, map[string]any{"contact_email": "a@example.com"}, 422},
		{"intake-empty-conversation", "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "", "contact_email": "a@example.com"}, 422},
		{"intake-bad-time", "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "c", "contact_email": "a@example.com", "resolved_at": "yesterday"}, 400},
		{"intake-date-only", "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "c", "contact_email": "a@example.com", "resolved_at": "2026-03-07"}, 400},
		{"intake-number-conversation", "POST", "/api/v1/csat/surveys", key, `{"conversation_id": 12, "contact_email": "a@example.com"}`, 400},
		{"intake-unknown-field", "POST", "/api/v1/csat/surveys", key, `{"conversation_id": "c", "contact_email": "a@example.com", "colour": "red"}`, 400},
		{"intake-bad-json", "POST", "/api/v1/csat/surveys", key, `{"conversation_id": `, 400},
		{"intake-empty-body", "POST", "/api/v1/csat/surveys", key, "", 400},
		{"intake-array", "POST", "/api/v1/csat/surveys", key, `[]`, 400},
		{"intake-trailing", "POST", "/api/v1/csat/surveys", key, `{"conversation_id": "c", "contact_email": "a@example.com"} {}`, 400},
		{"intake-too-large", "POST", "/api/v1/csat/surveys", key, big, 413},
		{"intake-no-key", "POST", "/api/v1/csat/surveys", "", map[string]any{"conversation_id": "c", "contact_email": "a@example.com"}, 401},
		{"intake-unknown-key", "POST", "/api/v1/csat/surveys", "ak_live_" + strings.Repeat("x", 32), map[string]any{"conversation_id": "c", "contact_email": "a@example.com"}, 401},
		{"intake-read-scope-403", "POST", "/api/v1/csat/surveys", readOnly, map[string]any{"conversation_id": "c", "contact_email": "a@example.com"}, 403},

		{"list-negative-limit", "GET", "/api/v1/csat/surveys?limit=-1", key, nil, 400},
		{"list-text-limit", "GET", "/api/v1/csat/surveys?limit=ten", key, nil, 400},
		{"list-zero-limit", "GET", "/api/v1/csat/surveys?limit=0", key, nil, 400},
		{"list-limit-101", "GET", "/api/v1/csat/surveys?limit=101", key, nil, 400},
		{"list-negative-offset", "GET", "/api/v1/csat/surveys?offset=-5", key, nil, 400},
		{"list-text-offset", "GET", "/api/v1/csat/surveys?offset=x", key, nil, 400},
		{"list-unknown-status", "GET", "/api/v1/csat/surveys?status=done", key, nil, 400},
		{"list-write-scope-403", "GET", "/api/v1/csat/surveys", writeOnly, nil, 403},
		{"list-no-key-401", "GET", "/api/v1/csat/surveys", "", nil, 401},

		{"config-delay-0", "PUT", "/api/v1/csat/config", key, map[string]any{"survey_delay_hours": 0}, 422},
		{"config-delay-73", "PUT", "/api/v1/csat/config", key, map[string]any{"survey_delay_hours": 73}, 422},
		{"config-delay-fraction", "PUT", "/api/v1/csat/config", key, `{"survey_delay_hours": 4.5}`, 400},
		{"config-delay-string", "PUT", "/api/v1/csat/config", key, `{"survey_delay_hours": "4"}`, 400},
		{"config-expiry-0", "PUT", "/api/v1/csat/config", key, map[string]any{"survey_expiry_days": 0}, 422},
		{"config-expiry-31", "PUT", "/api/v1/csat/config", key, map[string]any{"survey_expiry_days": 31}, 422},
		{"config-enabled-string", "PUT", "/api/v1/csat/config", key, `{"enabled": "yes"}`, 400},
		{"config-enabled-null", "PUT", "/api/v1/csat/config", key, `{"enabled": null}`, 400},
		{"config-unknown-field", "PUT", "/api/v1/csat/config", key, `{"survey_delay_days": 3}`, 400},
		{"config-one-bad-of-two", "PUT", "/api/v1/csat/config", key, map[string]any{"survey_delay_hours": 5, "survey_expiry_days": 99}, 422},
		{"config-read-scope-403", "PUT", "/api/v1/csat/config", readOnly, map[string]any{"enabled": false}, 403},
		{"config-get-write-scope-403", "GET", "/api/v1/csat/config", writeOnly, nil, 403},

		{"rate-0", "GET", "/api/v1/csat/rate?token=" + token + "&rating=0", "", nil, 400},
		{"rate-6", "GET", "/api/v1/csat/rate?token=" + token + "&rating=6", "", nil, 400},
		{"rate-abc", "GET", "/api/v1/csat/rate?token=" + token + "&rating=abc", "", nil, 400},
		{"rate-fraction", "GET", "/api/v1/csat/rate?token=" + token + "&rating=4.5", "", nil, 400},
		{"rate-missing", "GET", "/api/v1/csat/rate?token=" + token, "", nil, 400},
		{"rate-unknown-token", "GET", "/api/v1/csat/rate?token=" + tenantID + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&rating=5", "", nil, 404},
		{"rate-garbage-token", "GET", "/api/v1/csat/rate?token=%00%ff&rating=5", "", nil, 404},
		{"rate-no-token", "GET", "/api/v1/csat/rate?rating=5", "", nil, 404},
		{"submit-0", "POST", "/api/v1/csat/" + token + "/submit", "", `{"rating": 0}`, 422},
		{"submit-6", "POST", "/api/v1/csat/" + token + "/submit", "", `{"rating": 6}`, 422},
		{"submit-abc", "POST", "/api/v1/csat/" + token + "/submit", "", `{"rating": "abc"}`, 422},
		{"submit-fraction", "POST", "/api/v1/csat/" + token + "/submit", "", `{"rating": 4.5}`, 422},
		{"submit-string-5", "POST", "/api/v1/csat/" + token + "/submit", "", `{"rating": "5"}`, 422},
		{"submit-missing", "POST", "/api/v1/csat/" + token + "/submit", "", `{"feedback": "hi"}`, 422},
		{"submit-bad-json", "POST", "/api/v1/csat/" + token + "/submit", "", `{"rating": 5`, 400},
		{"submit-long-feedback", "POST", "/api/v1/csat/" + token + "/submit", "", map[string]any{"rating": 5, "feedback": strings.Repeat("a", 5001)}, 422},
		{"submit-unknown-token", "POST", "/api/v1/csat/" + tenantID + ".nope/submit", "", `{"rating": 5}`, 404},
		{"unknown-route", "GET", "/api/v1/csat/nothing", key, nil, 404},
		{"wrong-method", "DELETE", "/api/v1/csat/config", key, nil, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(t, c.method, c.path, c.key, c.body)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			errorCode(t, r)
		})
	}

	// Nothing changed: no survey stored, config as it was, the survey unanswered.
	if n := countSurveys(t, s); n != before {
		t.Errorf("%d surveys after bad input, want %d", n, before)
	}
	cfg := s.Do(t, "GET", "/api/v1/csat/config", key, nil).Map(t)
	if cfg["enabled"] != true || cfg["survey_delay_hours"] != 2.0 || cfg["survey_expiry_days"] != 7.0 {
		t.Errorf("config changed by bad input: %v", cfg)
	}
	if sv := getSurvey(t, s, tenantID, id); sv.Rating != nil || sv.Status != db.StatusSent {
		t.Errorf("survey changed by bad input: %+v", sv)
	}
}

// customerDefaults are the optional config fields (branding, templates,
// locale) after the documented three, at their defaults.
const customerDefaults = `,"brand_name":"","logo_url":"","accent_color":"","default_locale":"en","email_subject":"","email_message":"","button_labels":[]}`

func TestConfigPartialUpdate(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	_, key := s.NewTenant(t, "Acme")
	if r := s.Do(t, "GET", "/api/v1/csat/config", key, nil); string(r.Body) != `{"enabled":true,"survey_delay_hours":2,"survey_expiry_days":7`+customerDefaults+"\n" {
		t.Fatalf("default config: %s", r.Body)
	}
	steps := []struct {
		body any
		want string
	}{
		{map[string]any{"survey_delay_hours": 4, "survey_expiry_days": 14}, `{"enabled":true,"survey_delay_hours":4,"survey_expiry_days":14` + customerDefaults},
		{map[string]any{"enabled": false}, `{"enabled":false,"survey_delay_hours":4,"survey_expiry_days":14` + customerDefaults},
		{map[string]any{}, `{"enabled":false,"survey_delay_hours":4,"survey_expiry_days":14` + customerDefaults},
		{map[string]any{"survey_expiry_days": 1, "enabled": true}, `{"enabled":true,"survey_delay_hours":4,"survey_expiry_days":1` + customerDefaults},
	}
	for i, st := range steps {
		r := s.Do(t, "PUT", "/api/v1/csat/config", key, st.body)
		if r.Status != 200 || strings.TrimSpace(string(r.Body)) != st.want {
			t.Fatalf("step %d: %d %s", i, r.Status, r.Body)
		}
		if g := s.Do(t, "GET", "/api/v1/csat/config", key, nil); strings.TrimSpace(string(g.Body)) != st.want {
			t.Fatalf("step %d: GET %s", i, g.Body)
		}
	}
	// The new delay applies to the next intake.
	r := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "d", "contact_email": "d@example.com", "resolved_at": "2026-03-07T10:00:00Z"})
	if got := r.Map(t)["scheduled_for"]; got != "2026-03-07T14:00:00Z" {
		t.Fatalf("scheduled_for %v with a 4 h delay", got)
	}
}

func TestListPaging(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	_, key := s.NewTenant(t, "Acme")
	for i := range 7 {
		s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": fmt.Sprintf("c%d", i), "contact_email": "a@example.com"})
	}
	seen := map[string]bool{}
	var order []string
	for off := 0; off < 7; off += 3 {
		var page struct {
			Data []struct {
				ID             string `json:"id"`
				ConversationID string `json:"conversation_id"`
			} `json:"data"`
			Total, Limit, Offset int
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/csat/surveys?limit=3&offset=%d&status=pending", off), key, nil).JSON(t, &page)
		if page.Total != 7 || page.Limit != 3 || page.Offset != off {
			t.Fatalf("page at %d: total %d limit %d offset %d", off, page.Total, page.Limit, page.Offset)
		}
		for _, d := range page.Data {
			if seen[d.ID] {
				t.Fatalf("survey %s on two pages", d.ID)
			}
			seen[d.ID] = true
			order = append(order, d.ConversationID)
		}
	}
	if len(seen) != 7 || order[0] != "c6" || order[6] != "c0" {
		t.Fatalf("pages covered %d surveys in order %v; want all 7, newest first", len(seen), order)
	}
	var empty struct{ Data []any }
	s.Do(t, "GET", "/api/v1/csat/surveys?status=completed", key, nil).JSON(t, &empty)
	if empty.Data == nil || len(empty.Data) != 0 {
		t.Fatalf("an empty list must be [] not null")
	}
}
