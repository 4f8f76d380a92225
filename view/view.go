// Package view renders what a customer sees: the survey email and the
// public survey pages, in the survey's language and the tenant's branding.
// Templates, message catalogues and the page script are embedded;
// html/template escapes all data.
package view

import (
	"bytes"
	"embed"
	"fmt"
	htmltpl "html/template"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	texttpl "text/template"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/secret"
)

//go:embed templates
var files embed.FS

var (
	htmlT = htmltpl.Must(htmltpl.New("").ParseFS(files, "templates/*.html"))
	textT = texttpl.Must(texttpl.New("").ParseFS(files, "templates/*.txt"))
)

// DefaultAccent is the accent colour when the tenant sets none.
const DefaultAccent = "#2563eb"

// MaxFeedback is the length the feedback box allows (survey.MaxFeedback).
const MaxFeedback = 5000

var accentRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// ValidAccent reports whether s is a colour like #1a2b3c.
func ValidAccent(s string) bool { return accentRE.MatchString(s) }

// Brand is how a tenant presents itself to its customers.
type Brand struct {
	Name    string // shown in the email and on the pages
	LogoURL string // https URL or empty
	Accent  string // #rrggbb or empty for DefaultAccent
}

// accent is the validated accent colour.
func (b Brand) accent() string {
	if ValidAccent(b.Accent) {
		return strings.ToLower(b.Accent)
	}
	return DefaultAccent
}

// logo is the logo URL when it is safe to show: https only.
func (b Brand) logo() string {
	if strings.HasPrefix(b.LogoURL, "https://") && !strings.ContainsAny(b.LogoURL, " \t\r\n\"'<>") {
		return b.LogoURL
	}
	return ""
}

// onAccent is the text colour readable on the accent: dark on light
// accents, white on dark ones (WCAG relative luminance).
func onAccent(hex string) string {
	if luminance(hex) > 0.45 {
		return "#111827"
	}
	return "#ffffff"
}

// linkColor is the accent when it is dark enough to read on white.
func linkColor(hex string) string {
	if onAccent(hex) == "#ffffff" {
		return hex
	}
	return "#1f2937"
}

func luminance(hex string) float64 {
	if !ValidAccent(hex) {
		return 0
	}
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[i:i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(1) + 0.7152*ch(3) + 0.0722*ch(5)
}

// Templates are a tenant's own texts; empty fields use the catalogue.
type Templates struct {
	Subject string
	Message string
	Buttons []string // five labels, rating 1 first
}

// EmailData fills the survey email.
type EmailData struct {
	Brand          Brand
	ContactName    string
	ConversationID string
	Locale         string
	Templates      Templates
	RateURLs       [5]string // index 0 is rating 1
	SurveyURL      string
	UnsubscribeURL string
}

// Email is a rendered email.
type Email struct {
	Lang    string
	Subject string
	HTML    string
	Text    string
}

// Button is one one-click link of the email.
type Button struct {
	N     int
	Label string
	URL   string
}

type emailView struct {
	Lang           string
	T              map[string]string
	Brand          Brand
	Logo           string
	Accent         htmltpl.CSS
	OnAccent       htmltpl.CSS
	Link           htmltpl.CSS // link colour: the accent when it reads on white
	Subject        string
	Paragraphs     [][]string // paragraphs of lines
	Message        string
	Buttons        []Button
	SurveyURL      string
	UnsubscribeURL string
}

// SurveyEmail renders the survey email in the survey's language with the
// tenant's templates. Variables are substituted into plain text first;
// html/template then escapes the result, so a contact name cannot inject
// markup.
func SurveyEmail(d EmailData) (Email, error) {
	lang := Lang(d.Locale)
	vars := Vars{ContactName: d.ContactName, TenantName: d.Brand.Name, ConversationID: d.ConversationID}.Map()
	cat := catalogue(lang)
	pick := func(custom, key string) string {
		if strings.TrimSpace(custom) != "" {
			return custom
		}
		return cat[key]
	}
	subject := oneLine(Expand(pick(d.Templates.Subject, "email_subject"), vars))
	message := strings.TrimSpace(Expand(pick(d.Templates.Message, "email_message"), vars))
	v := emailView{
		Lang: lang, T: expandAll(cat, vars), Brand: d.Brand, Logo: d.Brand.logo(),
		Accent: htmltpl.CSS(d.Brand.accent()), OnAccent: htmltpl.CSS(onAccent(d.Brand.accent())),
		Link:    htmltpl.CSS(linkColor(d.Brand.accent())),
		Subject: subject, Message: message, Paragraphs: paragraphs(message),
		SurveyURL: d.SurveyURL, UnsubscribeURL: d.UnsubscribeURL,
	}
	for i, u := range d.RateURLs {
		label := cat["rating_"+strconv.Itoa(i+1)]
		if len(d.Templates.Buttons) == 5 && strings.TrimSpace(d.Templates.Buttons[i]) != "" {
			label = oneLine(Expand(d.Templates.Buttons[i], vars))
		}
		v.Buttons = append(v.Buttons, Button{N: i + 1, Label: label, URL: u})
	}
	var h, t bytes.Buffer
	if err := htmlT.ExecuteTemplate(&h, "email.html", v); err != nil {
		return Email{}, fmt.Errorf("render email html: %w", err)
	}
	if err := textT.ExecuteTemplate(&t, "email.txt", v); err != nil {
		return Email{}, fmt.Errorf("render email text: %w", err)
	}
	return Email{Lang: lang, Subject: subject, HTML: h.String(), Text: t.String()}, nil
}

var blankLineRE = regexp.MustCompile(`\n\s*\n`)

// paragraphs splits text at blank lines, and each paragraph into lines.
func paragraphs(s string) [][]string {
	var out [][]string
	for _, p := range blankLineRE.Split(strings.ReplaceAll(s, "\r\n", "\n"), -1) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.Split(p, "\n"))
		}
	}
	return out
}

// oneLine makes s safe for a header or a label: control characters become
// spaces and runs of space collapse.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// PageData fills a public page.
type PageData struct {
	Lang       string // the survey's locale; empty: from Accept-Language
	Brand      Brand
	Action     string // form target
	Rating     int
	Feedback   string
	MessageKey string // catalogue key of a message shown above the form
	Done       bool   // thanks page after the full survey: no second form
}

// Page names.
const (
	PageSurvey       = "survey.html"
	PageThanks       = "thanks.html"
	PageExpired      = "expired.html"
	PageNotFound     = "notfound.html"
	PageError        = "error.html"
	PageUnsubscribe  = "unsubscribe.html"
	PageUnsubscribed = "unsubscribed.html"
)

// Star is one choice of the star picker.
type Star struct {
	N       int
	Label   string // for screen readers: "4 of 5: Satisfied"
	Short   string // "Satisfied"
	Checked bool
}

type pageView struct {
	PageData
	T        map[string]string
	Nonce    string
	Logo     string
	Accent   htmltpl.CSS
	OnAccent htmltpl.CSS
	Stars    []Star
	Max      int
	Message  string
}

// CSP is the Content-Security-Policy of every page; the nonce admits the
// one inline style and script block. The token in the URL never leaves
// through Referer, and forms post only to us.
func CSP(nonce string) string {
	return "default-src 'none'; style-src 'nonce-" + nonce + "'; script-src 'nonce-" + nonce +
		"'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// Render writes a page with its security headers.
func Render(w http.ResponseWriter, r *http.Request, status int, name string, d PageData) {
	if d.Lang == "" && r != nil {
		d.Lang = LangFromRequest(r)
	}
	nonce := secret.Token(16)
	b, err := page(name, d, nonce)
	if err != nil {
		slog.Error("render page", "page", name, "err", err)
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP(nonce))
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", Lang(d.Lang))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// page renders a page to bytes with the given CSP nonce.
func page(name string, d PageData, nonce string) ([]byte, error) {
	lang := Lang(d.Lang)
	d.Lang = lang
	cat := catalogue(lang)
	vars := Vars{TenantName: d.Brand.Name}.Map()
	vars["rating"] = strconv.Itoa(d.Rating)
	vars["max"] = strconv.Itoa(MaxFeedback)
	v := pageView{
		PageData: d, T: expandAll(cat, vars), Nonce: nonce, Logo: d.Brand.logo(),
		Accent: htmltpl.CSS(d.Brand.accent()), OnAccent: htmltpl.CSS(onAccent(d.Brand.accent())),
		Max: MaxFeedback,
	}
	if d.MessageKey != "" {
		v.Message = cat[d.MessageKey]
	}
	for n := 1; n <= 5; n++ {
		short := cat["rating_"+strconv.Itoa(n)]
		label := Expand(cat["star_label"], map[string]string{"n": strconv.Itoa(n), "label": short})
		v.Stars = append(v.Stars, Star{N: n, Label: label, Short: short, Checked: n == d.Rating})
	}
	var b bytes.Buffer
	if err := htmlT.ExecuteTemplate(&b, name, v); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// RenderError shows the friendly page for a failed public request.
func RenderError(w http.ResponseWriter, r *http.Request, err error) {
	RenderErrorPage(w, r, err, PageData{})
}

// RenderErrorPage is RenderError with the survey's language and branding
// when they are known.
func RenderErrorPage(w http.ResponseWriter, r *http.Request, err error, d PageData) {
	switch errs.CodeOf(err) {
	case errs.Gone:
		Render(w, r, http.StatusGone, PageExpired, d)
	case errs.NotFound:
		Render(w, r, http.StatusNotFound, PageNotFound, PageData{Lang: d.Lang})
	case errs.Invalid, errs.Unprocessable:
		d.MessageKey = "err_rating"
		if e := errs.As(err); e != nil && e.Fields["feedback"] != "" {
			d.MessageKey = "err_feedback"
		}
		Render(w, r, http.StatusBadRequest, PageError, d)
	case errs.RateLimited:
		d.MessageKey = "err_rate_limited"
		Render(w, r, http.StatusTooManyRequests, PageError, d)
	default:
		slog.ErrorContext(r.Context(), "public page failed", "path", r.URL.Path, "err", err)
		Render(w, r, http.StatusServiceUnavailable, PageError, d)
	}
}
