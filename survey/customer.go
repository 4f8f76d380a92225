package survey

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/view"
)

// What the customer sees: branding, email templates, the default locale
// and opt-outs. The rules live here once; REST and GraphQL only map fields.

// SkipUnsubscribed is the intake skip reason for a contact who opted out
// of the tenant's surveys.
const SkipUnsubscribed = "unsubscribed"

// EventUnsubscribed is internal (live updates only): a contact opted out.
const EventUnsubscribed = "survey.contact_unsubscribed"

// Limits of the customer-facing config fields.
const (
	MaxBrandName   = 100
	MaxLogoURL     = 2048
	MaxSubject     = 200
	MaxMessage     = 2000
	MaxButtonLabel = 40
)

// Customer is the part of a ConfigPatch that shapes what the customer
// sees. A nil field keeps its value; an empty string (or an empty label
// list) resets the field to its default.
type Customer struct {
	BrandName     *string
	LogoURL       *string
	AccentColor   *string
	DefaultLocale *string
	EmailSubject  *string
	EmailMessage  *string
	ButtonLabels  *[]string
}

var localeRE = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$`)

// validate adds a message for each bad field to bad.
func (c Customer) validate(bad map[string]string) {
	if c.BrandName != nil {
		if msg := checkLine(strings.TrimSpace(*c.BrandName), MaxBrandName); msg != "" {
			bad["brand_name"] = msg
		}
	}
	if c.LogoURL != nil {
		if msg := checkLogoURL(strings.TrimSpace(*c.LogoURL)); msg != "" {
			bad["logo_url"] = msg
		}
	}
	if c.AccentColor != nil {
		if v := strings.TrimSpace(*c.AccentColor); v != "" && !view.ValidAccent(v) {
			bad["accent_color"] = "must be a colour like #1a73e8"
		}
	}
	if c.DefaultLocale != nil {
		if v := strings.TrimSpace(*c.DefaultLocale); v != "" && (!localeRE.MatchString(v) || !view.Supported(v)) {
			bad["default_locale"] = "must be one of " + strings.Join(view.Languages(), ", ") + ", optionally with a region like pt-BR"
		}
	}
	if c.EmailSubject != nil {
		if msg := checkTemplate(*c.EmailSubject, MaxSubject, false); msg != "" {
			bad["email_subject"] = msg
		}
	}
	if c.EmailMessage != nil {
		if msg := checkTemplate(*c.EmailMessage, MaxMessage, true); msg != "" {
			bad["email_message"] = msg
		}
	}
	if c.ButtonLabels != nil {
		labels := *c.ButtonLabels
		if len(labels) != 0 && len(labels) != 5 {
			bad["button_labels"] = "must be five labels (rating 1 first), or empty for the defaults"
		}
		for i, l := range labels {
			if strings.TrimSpace(l) == "" {
				bad["button_labels"] = fmt.Sprintf("label %d must not be empty", i+1)
				break
			}
			if msg := checkTemplate(l, MaxButtonLabel, false); msg != "" {
				bad["button_labels"] = fmt.Sprintf("label %d %s", i+1, msg)
				break
			}
		}
	}
}

// apply writes the given fields into cfg.
func (c Customer) apply(cfg *db.Config) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&cfg.BrandName, c.BrandName)
	set(&cfg.LogoURL, c.LogoURL)
	set(&cfg.AccentColor, c.AccentColor)
	cfg.AccentColor = strings.ToLower(cfg.AccentColor)
	set(&cfg.DefaultLocale, c.DefaultLocale)
	set(&cfg.EmailSubject, c.EmailSubject)
	set(&cfg.EmailMessage, c.EmailMessage)
	if c.ButtonLabels != nil {
		cfg.ButtonLabels = nil
		for _, l := range *c.ButtonLabels {
			cfg.ButtonLabels = append(cfg.ButtonLabels, strings.TrimSpace(l))
		}
	}
}

// checkLine is checkText for one line: no control characters at all.
func checkLine(s string, max int) string {
	if msg := checkText(s, max); msg != "" {
		return msg
	}
	if strings.IndexFunc(s, isControl) >= 0 {
		return "must be one line without control characters"
	}
	return ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkTemplate checks a tenant template: its length, its characters and
// that it uses only the known {{variables}}.
func checkTemplate(s string, max int, multiline bool) string {
	if multiline {
		if msg := checkText(s, max); msg != "" {
			return msg
		}
		if strings.IndexFunc(s, func(r rune) bool { return isControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0 {
			return "must not contain control characters"
		}
	} else if msg := checkLine(s, max); msg != "" {
		return msg
	}
	unknown, ok := view.UnknownVariables(s)
	if len(unknown) > 0 {
		return "uses unknown variable {{" + unknown[0] + "}}; known: {{" + strings.Join(view.TemplateVariables, "}}, {{") + "}}"
	}
	if !ok {
		return "has a malformed {{variable}}"
	}
	return ""
}

func checkLogoURL(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > MaxLogoURL || !utf8.ValidString(s) {
		return fmt.Sprintf("must be at most %d characters", MaxLogoURL)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(s, " \t\r\n\"'<>\\") {
		return "must be an https:// URL of an image"
	}
	return ""
}

// CustomerJSON is the REST shape of the customer-facing config fields.
type CustomerJSON struct {
	BrandName     string   `json:"brand_name"`
	LogoURL       string   `json:"logo_url"`
	AccentColor   string   `json:"accent_color"`
	DefaultLocale string   `json:"default_locale"`
	EmailSubject  string   `json:"email_subject"`
	EmailMessage  string   `json:"email_message"`
	ButtonLabels  []string `json:"button_labels"`
}

func customerToJSON(c *db.Config) CustomerJSON {
	labels := c.ButtonLabels
	if labels == nil {
		labels = []string{}
	}
	return CustomerJSON{
		BrandName: c.BrandName, LogoURL: c.LogoURL, AccentColor: c.AccentColor,
		DefaultLocale: DefaultLocale(c), EmailSubject: c.EmailSubject, EmailMessage: c.EmailMessage,
		ButtonLabels: labels,
	}
}

// DefaultLocale is the tenant's default survey locale ("en" when unset).
func DefaultLocale(c *db.Config) string {
	if c.DefaultLocale == "" {
		return view.DefaultLang
	}
	return c.DefaultLocale
}

// BrandOf is how a tenant presents itself: its brand name (the tenant's
// name unless set), logo and accent colour.
func BrandOf(t *db.Tenant, c *db.Config) view.Brand {
	b := view.Brand{Name: t.Name}
	if c != nil {
		if c.BrandName != "" {
			b.Name = c.BrandName
		}
		b.LogoURL, b.Accent = c.LogoURL, c.AccentColor
	}
	return b
}

// Brand returns a tenant's branding for a public page; on failure the
// page still renders, with defaults.
func (s *Service) Brand(ctx context.Context, tenantID string) view.Brand {
	var b view.Brand
	err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) error {
		t, err := db.GetTenant(ctx, idb, tenantID)
		if err != nil {
			return err
		}
		c, err := db.GetConfig(ctx, idb, tenantID)
		if err != nil {
			return err
		}
		b = BrandOf(t, c)
		return nil
	})
	if err != nil {
		s.log().Warn("load branding", "tenant_id", tenantID, "err", err)
	}
	return b
}

// SurveyPage returns the language and branding of a survey's pages.
func (s *Service) SurveyPage(ctx context.Context, sv *db.Survey) view.PageData {
	return view.PageData{Lang: view.Lang(sv.Locale), Brand: s.Brand(ctx, sv.TenantID)}
}

// optedOut reports whether a contact opted out of the tenant's surveys.
func (s *Service) optedOut(ctx context.Context, idb bun.IDB, tenantID, email string) (bool, error) {
	return db.IsUnsubscribed(ctx, idb, tenantID, email)
}

// UnsubscribeURL is the public link that opts a contact out.
func (s *Service) UnsubscribeURL(unsubToken string) string {
	return strings.TrimRight(s.BaseURL, "/") + "/u/" + unsubToken
}

// render builds the survey email in the survey's language, with the
// tenant's branding and templates and a one-click unsubscribe (RFC 8058).
func (s *Service) render(ctx context.Context, tx bun.IDB, sv *db.Survey, cfg *db.Config, token, unsub string) (mail.Message, error) {
	t, err := db.GetTenant(ctx, tx, sv.TenantID)
	if err != nil {
		return mail.Message{}, fmt.Errorf("load tenant: %w", err)
	}
	return s.renderFor(t, cfg, sv, token, unsub)
}

// renderFor is render with the tenant already loaded.
func (s *Service) renderFor(t *db.Tenant, cfg *db.Config, sv *db.Survey, token, unsub string) (mail.Message, error) {
	links := s.LinksFor(token)
	unsubURL := s.UnsubscribeURL(unsub)
	e, err := view.SurveyEmail(view.EmailData{
		Brand:          BrandOf(t, cfg),
		ContactName:    sv.ContactName,
		ConversationID: sv.ConversationID,
		Locale:         sv.Locale,
		Templates:      view.Templates{Subject: cfg.EmailSubject, Message: cfg.EmailMessage, Buttons: cfg.ButtonLabels},
		RateURLs:       links.Rate,
		SurveyURL:      links.Survey,
		UnsubscribeURL: unsubURL,
	})
	if err != nil {
		return mail.Message{}, err
	}
	return emailMessage(sv, e.Lang, e.Subject, e.HTML, e.Text, unsubURL), nil
}

// emailMessage is a survey's email with its rendered parts and headers.
func emailMessage(sv *db.Survey, lang, subject, html, text, unsubURL string) mail.Message {
	return mail.Message{
		To: sv.ContactEmail, ToName: sv.ContactName, Subject: subject, HTML: html, Text: text,
		Headers: map[string]string{
			"X-CSAT-Survey-ID":      sv.ID,
			"List-Unsubscribe":      "<" + unsubURL + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"Content-Language":      lang,
		},
	}
}

// LookupUnsubscribe returns the survey an unsubscribe link belongs to.
// The link keeps working after the survey expired.
func (s *Service) LookupUnsubscribe(ctx context.Context, token string) (*db.Survey, error) {
	tenantID, hash, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	var sv *db.Survey
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		sv, err = db.GetSurveyByUnsubscribe(ctx, idb, tenantID, hash)
		return err
	})
	if errors.Is(err, errs.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "unknown unsubscribe link")
	}
	return sv, err
}

// Unsubscribe opts the contact of an unsubscribe link out of the tenant's
// surveys: intake skips them and pending sends expire. Repeating it is
// harmless.
func (s *Service) Unsubscribe(ctx context.Context, token string) (*db.Survey, error) {
	tenantID, hash, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	var out *db.Survey
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx, emit func(Event)) error {
		sv, err := db.GetSurveyByUnsubscribe(ctx, tx, tenantID, hash)
		if errors.Is(err, errs.ErrNotFound) {
			return errs.New(errs.NotFound, "unknown unsubscribe link")
		}
		if err != nil {
			return err
		}
		u := &db.Unsubscribe{TenantID: tenantID, Email: sv.ContactEmail, SurveyID: sv.ID, CreatedAt: s.now()}
		if err := db.InsertUnsubscribe(ctx, tx, u); err != nil {
			return err
		}
		emit(s.surveyEvent(EventUnsubscribed, sv))
		out = sv
		return nil
	})
	return out, err
}
