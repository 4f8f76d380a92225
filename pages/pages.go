// Package pages serves the public survey pages at /s/{token}: the full
// survey form and its no-JavaScript form post.
package pages

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

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
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	sv, err := h.Svc.Lookup(r.Context(), token)
	if err == nil {
		err = survey.Answerable(sv, h.Svc.Clock())
	}
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	d := view.PageData{Action: "/s/" + token, TenantName: h.Svc.TenantName(r.Context(), sv.TenantID), Lang: view.Lang(sv.Locale)}
	if sv.Rating != nil {
		d.Rating = *sv.Rating
	}
	if sv.Feedback != nil {
		d.Feedback = *sv.Feedback
	}
	view.Render(w, http.StatusOK, view.PageSurvey, d)
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		view.Render(w, http.StatusBadRequest, view.PageError, view.PageData{Message: "The form could not be read. Please try again."})
		return
	}
	rating, err := survey.ParseRating(strings.TrimSpace(r.PostForm.Get("rating")))
	if err != nil {
		h.showWithMessage(w, r, token, "Please choose a rating from 1 to 5.")
		return
	}
	feedback := r.PostForm.Get("feedback")
	sv, err := h.Svc.Submit(r.Context(), token, rating, &feedback)
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	d := view.PageData{TenantName: h.Svc.TenantName(r.Context(), sv.TenantID), Lang: view.Lang(sv.Locale), Rating: rating, Feedback: feedback}
	if d.Feedback == "" {
		d.Feedback = " " // thanked for the whole survey: no second form
	}
	view.Render(w, http.StatusOK, view.PageThanks, d)
}

func (h *Handler) showWithMessage(w http.ResponseWriter, r *http.Request, token, msg string) {
	sv, err := h.Svc.Lookup(r.Context(), token)
	if err != nil {
		view.RenderError(w, r, err)
		return
	}
	view.Render(w, http.StatusBadRequest, view.PageSurvey, view.PageData{
		Action: "/s/" + token, TenantName: h.Svc.TenantName(r.Context(), sv.TenantID), Lang: view.Lang(sv.Locale), Message: msg,
	})
}
