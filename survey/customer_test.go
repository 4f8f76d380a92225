package survey

import (
	"strings"
	"testing"

	"github.com/csat/csat/db"
)

func ptr[T any](v T) *T { return &v }

func TestCustomerValidate(t *testing.T) {
	cases := []struct {
		name  string
		c     Customer
		field string // "" means valid
	}{
		{"empty-patch-ok", Customer{}, ""},
		{"reset-all-ok", Customer{BrandName: ptr(""), LogoURL: ptr(""), AccentColor: ptr(""), DefaultLocale: ptr(""),
			EmailSubject: ptr(""), EmailMessage: ptr(""), ButtonLabels: ptr([]string{})}, ""},
		{"brand-ok", Customer{BrandName: ptr("Acme & Co")}, ""},
		{"brand-too-long", Customer{BrandName: ptr(strings.Repeat("a", MaxBrandName+1))}, "brand_name"},
		{"brand-newline", Customer{BrandName: ptr("a\nb")}, "brand_name"},
		{"logo-https-ok", Customer{LogoURL: ptr("https://cdn.example/logo.svg?v=2")}, ""},
		{"logo-http", Customer{LogoURL: ptr("http://cdn.example/logo.png")}, "logo_url"},
		{"logo-data", Customer{LogoURL: ptr("data:image/png;base64,AAAA")}, "logo_url"},
		{"logo-no-host", Customer{LogoURL: ptr("https:///logo.png")}, "logo_url"},
		{"logo-userinfo", Customer{LogoURL: ptr("https://u:p@cdn.example/l.png")}, "logo_url"},
		{"logo-quote", Customer{LogoURL: ptr(`https://cdn.example/"l.png`)}, "logo_url"},
		{"accent-ok", Customer{AccentColor: ptr("#A1b2C3")}, ""},
		{"accent-3-digit", Customer{AccentColor: ptr("#abc")}, "accent_color"},
		{"accent-css-injection", Customer{AccentColor: ptr("#000;}body{x")}, "accent_color"},
		{"locale-ok", Customer{DefaultLocale: ptr("pt-BR")}, ""},
		{"locale-underscore-ok", Customer{DefaultLocale: ptr("es_MX")}, ""},
		{"locale-unsupported", Customer{DefaultLocale: ptr("ja")}, "default_locale"},
		{"locale-garbage", Customer{DefaultLocale: ptr("de DE")}, "default_locale"},
		{"subject-vars-ok", Customer{EmailSubject: ptr("{{contact_name}} · {{tenant_name}} · {{conversation_id}}")}, ""},
		{"subject-unknown-var", Customer{EmailSubject: ptr("{{agent}}")}, "email_subject"},
		{"subject-malformed", Customer{EmailSubject: ptr("{{contact_name")}, "email_subject"},
		{"subject-crlf", Customer{EmailSubject: ptr("a\r\nb")}, "email_subject"},
		{"message-multiline-ok", Customer{EmailMessage: ptr("Hi {{contact_name}},\n\nThanks!")}, ""},
		{"message-too-long", Customer{EmailMessage: ptr(strings.Repeat("a", MaxMessage+1))}, "email_message"},
		{"message-nul", Customer{EmailMessage: ptr("a\x00b")}, "email_message"},
		{"message-bell", Customer{EmailMessage: ptr("a\x07b")}, "email_message"},
		{"labels-ok", Customer{ButtonLabels: ptr([]string{"1", "2", "3", "4", "{{tenant_name}} rocks"})}, ""},
		{"labels-four", Customer{ButtonLabels: ptr([]string{"1", "2", "3", "4"})}, "button_labels"},
		{"labels-blank", Customer{ButtonLabels: ptr([]string{"1", " ", "3", "4", "5"})}, "button_labels"},
		{"labels-too-long", Customer{ButtonLabels: ptr([]string{"1", "2", "3", "4", strings.Repeat("x", MaxButtonLabel+1)})}, "button_labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := map[string]string{}
			c.c.validate(bad)
			switch {
			case c.field == "" && len(bad) > 0:
				t.Fatalf("refused: %v", bad)
			case c.field != "" && bad[c.field] == "":
				t.Fatalf("accepted; want a message for %s (got %v)", c.field, bad)
			case c.field != "" && len(bad) != 1:
				t.Fatalf("messages for other fields too: %v", bad)
			}
		})
	}
}

func TestCustomerApply(t *testing.T) {
	cfg := &db.Config{BrandName: "Old", AccentColor: "#000000", ButtonLabels: []string{"a", "b", "c", "d", "e"}}
	Customer{AccentColor: ptr(" #ABCDEF "), LogoURL: ptr("https://x.example/l.png"), ButtonLabels: ptr([]string{})}.apply(cfg)
	if cfg.AccentColor != "#abcdef" || cfg.LogoURL != "https://x.example/l.png" || cfg.BrandName != "Old" || len(cfg.ButtonLabels) != 0 {
		t.Fatalf("applied: %+v", cfg)
	}
	if DefaultLocale(cfg) != "en" {
		t.Fatalf("unset default locale is %q", DefaultLocale(cfg))
	}
}

func TestBrandOf(t *testing.T) {
	tn := &db.Tenant{Name: "Acme Support Ltd"}
	if b := BrandOf(tn, &db.Config{}); b.Name != "Acme Support Ltd" {
		t.Errorf("brand name %q, want the tenant's name", b.Name)
	}
	if b := BrandOf(tn, &db.Config{BrandName: "Acme", AccentColor: "#112233"}); b.Name != "Acme" || b.Accent != "#112233" {
		t.Errorf("brand %+v", b)
	}
}
