package rest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/testenv"
)

func TestConfigCustomerFields(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, key := s.NewTenant(t, "Acme Support")

	got := s.Do(t, "GET", "/api/v1/csat/config", key, nil).Map(t)
	want := map[string]any{
		"enabled": true, "survey_delay_hours": 2.0, "survey_expiry_days": 7.0,
		"brand_name": "", "logo_url": "", "accent_color": "", "default_locale": "en",
		"email_subject": "", "email_message": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("default %s = %v, want %v", k, got[k], v)
		}
	}
	if labels, ok := got["button_labels"].([]any); !ok || len(labels) != 0 {
		t.Errorf("default button_labels = %v, want []", got["button_labels"])
	}

	put := s.Do(t, "PUT", "/api/v1/csat/config", key, map[string]any{
		"brand_name": "Acme", "logo_url": "https://cdn.acme.example/logo.png", "accent_color": "#16A34A",
		"default_locale": "fr", "email_subject": "{{contact_name}}, votre avis sur {{conversation_id}} ?",
		"button_labels": []string{"Nul", "Bof", "Correct", "Bien", "Super"},
	})
	if put.Status != 200 {
		t.Fatalf("put: %d %s", put.Status, put.Body)
	}
	got = s.Do(t, "GET", "/api/v1/csat/config", key, nil).Map(t)
	if got["accent_color"] != "#16a34a" || got["default_locale"] != "fr" || got["brand_name"] != "Acme" ||
		got["survey_delay_hours"] != 2.0 || got["enabled"] != true {
		t.Fatalf("after partial put: %v", got)
	}

	cases := []struct {
		name  string
		body  any
		code  int
		field string
	}{
		{"logo-http-422", map[string]any{"logo_url": "http://cdn.acme.example/l.png"}, 422, "logo_url"},
		{"logo-js-422", map[string]any{"logo_url": "javascript:alert(1)"}, 422, "logo_url"},
		{"accent-name-422", map[string]any{"accent_color": "red"}, 422, "accent_color"},
		{"accent-short-422", map[string]any{"accent_color": "#fff"}, 422, "accent_color"},
		{"locale-unsupported-422", map[string]any{"default_locale": "it"}, 422, "default_locale"},
		{"locale-garbage-422", map[string]any{"default_locale": "en;drop"}, 422, "default_locale"},
		{"subject-unknown-var-422", map[string]any{"email_subject": "Hi {{agent_name}}"}, 422, "email_subject"},
		{"subject-newline-422", map[string]any{"email_subject": "Hi\r\nBcc: x@example.com"}, 422, "email_subject"},
		{"subject-too-long-422", map[string]any{"email_subject": strings.Repeat("a", 201)}, 422, "email_subject"},
		{"message-malformed-var-422", map[string]any{"email_message": "Hi {{contact_name"}, 422, "email_message"},
		{"labels-three-422", map[string]any{"button_labels": []string{"a", "b", "c"}}, 422, "button_labels"},
		{"labels-empty-one-422", map[string]any{"button_labels": []string{"a", "", "c", "d", "e"}}, 422, "button_labels"},
		{"brand-newline-422", map[string]any{"brand_name": "A\nB"}, 422, "brand_name"},
		{"labels-type-400", map[string]any{"button_labels": "a,b,c,d,e"}, 400, ""},
		{"null-400", map[string]any{"logo_url": nil}, 400, ""},
		{"unknown-field-400", map[string]any{"logo": "https://x.example/l.png"}, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(t, "PUT", "/api/v1/csat/config", key, c.body)
			if r.Status != c.code {
				t.Fatalf("%d, want %d: %s", r.Status, c.code, r.Body)
			}
			if c.field != "" {
				e := r.Map(t)["error"].(map[string]any)
				fields, _ := e["fields"].(map[string]any)
				if fields[c.field] == nil {
					t.Fatalf("no message for %s: %s", c.field, r.Body)
				}
			}
		})
	}
	// Nothing of the refused updates was stored.
	if after := s.Do(t, "GET", "/api/v1/csat/config", key, nil).Map(t); after["logo_url"] != "https://cdn.acme.example/logo.png" || after["accent_color"] != "#16a34a" {
		t.Fatalf("refused update changed config: %v", after)
	}

	// The tenant's default locale, brand and templates shape the email.
	res := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": "conv-7", "contact_email": "luc@example.com", "contact_name": "Luc",
		"resolved_at": time.Now().Add(-2*time.Hour - time.Second).UTC().Format(time.RFC3339),
	})
	if res.Status != 201 || res.Map(t)["locale"] != "fr" {
		t.Fatalf("intake: %d %s", res.Status, res.Body)
	}
	e := s.SMTP.WaitFor(t, "luc@example.com", 1, 20*time.Second)[0]
	if e.Subject != "Luc, votre avis sur conv-7 ?" {
		t.Errorf("subject %q", e.Subject)
	}
	for _, want := range []string{`<html lang="fr">`, `src="https://cdn.acme.example/logo.png"`, "#16a34a", ">Super</td>", "Merci d’avoir contacté Acme."} {
		if !strings.Contains(e.HTML, want) {
			t.Errorf("email HTML lacks %q", want)
		}
	}
	if !strings.Contains(e.Text, "5 - Super: ") {
		t.Errorf("text part lacks the custom label:\n%s", e.Text)
	}

	// Empty values reset to the defaults.
	reset := s.Do(t, "PUT", "/api/v1/csat/config", key, map[string]any{"button_labels": []string{}, "email_subject": "", "default_locale": ""}).Map(t)
	if labels := reset["button_labels"].([]any); len(labels) != 0 || reset["email_subject"] != "" || reset["default_locale"] != "en" {
		t.Fatalf("reset: %v", reset)
	}
	if !slices.Contains([]any{"Acme"}, reset["brand_name"]) {
		t.Fatalf("reset touched brand_name: %v", reset)
	}
}
