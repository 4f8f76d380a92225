package graph_test

import (
	"testing"
)

const customerFields = `brandName logoUrl accentColor defaultLocale emailSubject emailMessage buttonLabels`

// TestCustomerConfig: the customer-facing config fields round-trip through
// GraphQL, agree with REST, reset to defaults with "" / [] and are
// validated by the same rules (BAD_USER_INPUT naming the fields).
func TestCustomerConfig(t *testing.T) {
	s := startHooks(t)
	_, key := s.NewTenant(t, "Acme")

	d := mustGQL(t, s, key, `{ csatConfig { `+customerFields+` } }`, nil)
	if dig(d, "csatConfig", "brandName") != "" || dig(d, "csatConfig", "defaultLocale") != "en" || len(dig(d, "csatConfig", "buttonLabels").([]any)) != 0 {
		t.Fatalf("defaults %v", d)
	}

	in := map[string]any{
		"brandName": " Acme Support ", "logoUrl": "https://cdn.example.com/logo.png", "accentColor": "#1A73E8",
		"defaultLocale": "en-GB", "emailSubject": "How did we do, {{contact_name}}?", "emailMessage": "Thanks for talking to {{tenant_name}}.\nTell us more.",
		"buttonLabels": []string{"Awful", "Bad", "OK", "Good", "Great"},
	}
	q := `mutation($in: UpdateCsatConfigInput!) { updateCsatConfig(input: $in) { surveyDelayHours ` + customerFields + ` } }`
	d = mustGQL(t, s, key, q, map[string]any{"in": in})
	want := map[string]any{
		"brandName": "Acme Support", "logoUrl": "https://cdn.example.com/logo.png", "accentColor": "#1a73e8", "defaultLocale": "en-GB",
		"emailSubject": "How did we do, {{contact_name}}?", "emailMessage": "Thanks for talking to {{tenant_name}}.\nTell us more.",
	}
	for k, v := range want {
		if got := dig(d, "updateCsatConfig", k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if l := dig(d, "updateCsatConfig", "buttonLabels").([]any); len(l) != 5 || l[4] != "Great" {
		t.Errorf("buttonLabels %v", l)
	}
	// REST shows the same config.
	rest := s.Do(t, "GET", "/api/v1/csat/config", key, nil).Map(t)
	if rest["brand_name"] != "Acme Support" || rest["accent_color"] != "#1a73e8" || rest["default_locale"] != "en-GB" || len(rest["button_labels"].([]any)) != 5 {
		t.Errorf("REST config %v", rest)
	}

	// Invalid values: nothing changes, every bad field is named.
	r := gql(t, s, key, q, map[string]any{"in": map[string]any{"accentColor": "red", "logoUrl": "http://cdn.example.com/x.png",
		"buttonLabels": []string{"a", "b"}, "emailSubject": "Hi {{secret}}", "surveyDelayHours": 9}})
	var fields map[string]any
	if len(r.Errors) > 0 {
		fields, _ = r.Errors[0].Extensions["fields"].(map[string]any)
	}
	if r.code() != "BAD_USER_INPUT" || len(fields) != 4 || fields["accent_color"] == nil || fields["logo_url"] == nil ||
		fields["button_labels"] == nil || fields["email_subject"] == nil {
		t.Fatalf("invalid config: %+v", r.Errors)
	}
	d = mustGQL(t, s, key, `{ csatConfig { surveyDelayHours accentColor } }`, nil)
	if dig(d, "csatConfig", "accentColor") != "#1a73e8" || dig(d, "csatConfig", "surveyDelayHours") == float64(9) {
		t.Fatalf("a refused update changed %v", d)
	}

	// "" and [] reset; absent fields stay.
	d = mustGQL(t, s, key, q, map[string]any{"in": map[string]any{"brandName": "", "defaultLocale": "", "buttonLabels": []string{}}})
	if dig(d, "updateCsatConfig", "brandName") != "" || dig(d, "updateCsatConfig", "defaultLocale") != "en" ||
		len(dig(d, "updateCsatConfig", "buttonLabels").([]any)) != 0 || dig(d, "updateCsatConfig", "accentColor") != "#1a73e8" {
		t.Fatalf("reset %v", d)
	}
}
