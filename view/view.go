// Package view renders what a customer sees: the survey email and the
// public survey pages. Templates are embedded; html/template escapes all
// data.
package view

import (
	"bytes"
	"embed"
	"fmt"
	htmltpl "html/template"
	"log/slog"
	"net/http"
	"strings"
	texttpl "text/template"

	"github.com/csat/csat/errs"
)

//go:embed templates
var files embed.FS

func inc(i int) int { return i + 1 }

var (
	htmlT = htmltpl.Must(htmltpl.New("").Funcs(htmltpl.FuncMap{"inc": inc, "stars": stars}).ParseFS(files, "templates/*.html"))
	textT = texttpl.Must(texttpl.New("").Funcs(texttpl.FuncMap{"inc": inc}).ParseFS(files, "templates/*.txt"))
)

// EmailData fills the survey email.
type EmailData struct {
	TenantName     string
	ContactName    string
	ConversationID string
	Locale         string
	RateURLs       [5]string // index 0 is rating 1
	SurveyURL      string
}

// Email is a rendered email.
type Email struct {
	Subject string
	HTML    string
	Text    string
}

// SurveyEmail renders the survey email.
func SurveyEmail(d EmailData) (Email, error) {
	var h, t bytes.Buffer
	if err := htmlT.ExecuteTemplate(&h, "email.html", d); err != nil {
		return Email{}, fmt.Errorf("render email html: %w", err)
	}
	if err := textT.ExecuteTemplate(&t, "email.txt", d); err != nil {
		return Email{}, fmt.Errorf("render email text: %w", err)
	}
	return Email{
		Subject: fmt.Sprintf("How did %s do? Rate your support", d.TenantName),
		HTML:    h.String(),
		Text:    t.String(),
	}, nil
}

// PageData fills a public page.
type PageData struct {
	Lang       string
	TenantName string
	Action     string // form target
	Rating     int
	Feedback   string
	Message    string
}

// Page names.
const (
	PageSurvey   = "survey.html"
	PageThanks   = "thanks.html"
	PageExpired  = "expired.html"
	PageNotFound = "notfound.html"
	PageError    = "error.html"
)

// Render writes a page with security headers; the token in the URL never
// leaks through Referer.
func Render(w http.ResponseWriter, status int, name string, d PageData) {
	if d.Lang == "" {
		d.Lang = "en"
	}
	var b bytes.Buffer
	if err := htmlT.ExecuteTemplate(&b, name, d); err != nil {
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func stars() []int { return []int{1, 2, 3, 4, 5} }

// Lang picks the page language for a survey locale.
func Lang(locale string) string {
	if len(locale) >= 2 {
		return strings.ToLower(locale[:2])
	}
	return "en"
}

// RenderError shows the friendly page for a failed public request.
func RenderError(w http.ResponseWriter, r *http.Request, err error) {
	var d PageData
	switch errs.CodeOf(err) {
	case errs.Gone:
		Render(w, http.StatusGone, PageExpired, d)
	case errs.NotFound:
		Render(w, http.StatusNotFound, PageNotFound, d)
	case errs.Invalid, errs.Unprocessable:
		d.Message = "Please choose a rating from 1 to 5."
		Render(w, http.StatusBadRequest, PageError, d)
	case errs.RateLimited:
		d.Message = "Too many requests. Please wait a minute and try again."
		Render(w, http.StatusTooManyRequests, PageError, d)
	default:
		slog.ErrorContext(r.Context(), "public page failed", "path", r.URL.Path, "err", err)
		Render(w, http.StatusServiceUnavailable, PageError, d)
	}
}
