// Package pages serves the public pages a customer opens from a survey
// email: the full survey at /s/{token} (a form that works without
// JavaScript) and the unsubscribe page at /u/{token}. The tokens are the
// credentials; every page is rendered by view with its security headers.
package pages

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/view"
)

// Handler serves the pages.
type Handler struct {
	Svc *survey.Service
	// Limit wraps a route with its rate limit by name; nil means none.
	Limit func(name string) func(http.Handler) http.Handler
}

func (h *Handler) limit(name string) func(http.Handler) http.Handler {
	if h.Limit == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	return h.Limit(name)
}

// Routes mounts the pages on r.
func (h *Handler) Routes(r chi.Router) {
	r.With(h.limit("page")).Get("/s/{token}", h.show)
	r.With(h.limit("submit")).Post("/s/{token}", h.post)
	r.With(h.limit("page")).Get("/u/{token}", h.unsubscribeForm)
	r.With(h.limit("submit")).Post("/u/{token}", h.unsubscribe)
}

// maxForm bounds a form body: feedback of 5000 characters, URL-encoded.
const maxForm = 64 << 10

func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	sv, err := h.Svc.Lookup(r.Context(), token)
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	d := h.Svc.SurveyPage(r.Context(), sv)
	if err := survey.Answerable(sv, h.Svc.Clock()); err != nil {
		view.RenderErrorPage(w, r, err, d)
		return
	}
	d.Action = "/s/" + token
	if sv.Rating != nil {
		d.Rating = *sv.Rating
	}
	if sv.Feedback != nil {
		d.Feedback = *sv.Feedback
	}
	view.Render(w, r, http.StatusOK, view.PageSurvey, d)
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			view.Render(w, r, http.StatusRequestEntityTooLarge, view.PageError, view.PageData{MessageKey: "err_form"})
			return
		}
		view.Render(w, r, http.StatusBadRequest, view.PageError, view.PageData{MessageKey: "err_form"})
		return
	}
	feedback := r.PostForm.Get("feedback")
	rating, err := survey.ParseRating(strings.TrimSpace(r.PostForm.Get("rating")))
	if err != nil {
		h.again(w, r, token, 0, feedback, "err_rating")
		return
	}
	sv, err := h.Svc.Submit(r.Context(), token, rating, &feedback)
	if e := errs.As(err); e != nil && e.Fields["feedback"] != "" {
		h.again(w, r, token, rating, feedback, "err_feedback")
		return
	}
	if err != nil {
		h.fail(w, r, token, err)
		return
	}
	d := h.Svc.SurveyPage(r.Context(), sv)
	d.Rating, d.Done = rating, true
	view.Render(w, r, http.StatusOK, view.PageThanks, d)
}

// again shows the survey form once more with what was entered and why it
// was refused.
func (h *Handler) again(w http.ResponseWriter, r *http.Request, token string, rating int, feedback, msgKey string) {
	sv, err := h.Svc.Lookup(r.Context(), token)
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	d := h.Svc.SurveyPage(r.Context(), sv)
	d.Action, d.Rating, d.Feedback, d.MessageKey = "/s/"+token, rating, feedback, msgKey
	view.Render(w, r, http.StatusBadRequest, view.PageSurvey, d)
}

// fail renders an error page in the survey's language when the token is
// known.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, token string, err error) {
	var d view.PageData
	if errs.CodeOf(err) != errs.NotFound {
		if sv, lerr := h.Svc.Lookup(r.Context(), token); lerr == nil {
			d = h.Svc.SurveyPage(r.Context(), sv)
		}
	}
	view.RenderErrorPage(w, r, err, d)
}

// unsubscribeForm asks before opting out: mail scanners open links, and
// a GET must not change anything.
func (h *Handler) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	sv, err := h.Svc.LookupUnsubscribe(r.Context(), token)
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	d := h.Svc.SurveyPage(r.Context(), sv)
	d.Action = "/u/" + token
	view.Render(w, r, http.StatusOK, view.PageUnsubscribe, d)
}

// unsubscribe opts the contact out: the confirmation form posts here, and
// so do mail clients' one-click unsubscribe (RFC 8058, body
// "List-Unsubscribe=One-Click").
func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	_ = r.ParseForm()
	sv, err := h.Svc.Unsubscribe(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	view.Render(w, r, http.StatusOK, view.PageUnsubscribed, h.Svc.SurveyPage(r.Context(), sv))
}
