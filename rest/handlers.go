package rest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/view"
	"github.com/csat/csat/webhooks"
)

// Handler serves the REST API.
type Handler struct {
	Svc  *survey.Service
	Auth tenants.Authenticator
	Log  *slog.Logger
	// Webhooks manages webhook endpoints; nil leaves /webhooks unmounted.
	Webhooks *webhooks.Service
	// Limit wraps a route with its rate limit by name; nil means no limits.
	Limit func(name string) func(http.Handler) http.Handler
}

func (h *Handler) limit(name string) func(http.Handler) http.Handler {
	if h.Limit == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	return h.Limit(name)
}

// Routes mounts the API on r (at /api/v1 and, for old clients, /v1).
func (h *Handler) Routes(r chi.Router) {
	for _, prefix := range []string{"/api/v1", "/v1"} {
		r.Route(prefix, func(r chi.Router) {
			r.NotFound(notFound)
			r.MethodNotAllowed(methodNotAllowed)
			// Public: the survey token is the credential.
			r.With(h.limit("rate")).Get("/csat/rate", h.rate)
			r.With(h.limit("rate")).Head("/csat/rate", h.rateHead)
			r.With(h.limit("submit")).Post("/csat/{token}/submit", h.submit)
			r.With(h.limit("openapi")).Get("/openapi.json", serveOpenAPI)
			r.Group(func(r chi.Router) {
				r.Use(tenants.Middleware(h.Auth, WriteError))
				r.With(h.limit("list")).Get("/csat/surveys", h.listSurveys)
				r.With(h.limit("intake")).Post("/csat/surveys", h.intake)
				r.With(h.limit("export")).Get("/csat/surveys/export", h.exportSurveys)
				r.With(h.limit("analytics")).Get("/csat/analytics", h.analytics)
				r.With(h.limit("read")).Get("/csat/surveys/{id}", h.getSurvey)
				r.With(h.limit("read")).Get("/csat/config", h.getConfig)
				r.With(h.limit("config")).Put("/csat/config", h.putConfig)
				if h.Webhooks != nil {
					h.webhookRoutes(r)
				}
			})
		})
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, errs.New(errs.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusMethodNotAllowed, errorBody{errorDetail{Code: "method_not_allowed", Message: r.Method + " is not allowed here"}})
}

// queryPage parses the limit (default 20) and offset (default 0) of a list.
func queryPage(r *http.Request) (limit, offset int, err error) {
	if limit, err = queryInt(r, "limit", 20); err != nil {
		return 0, 0, err
	}
	offset, err = queryInt(r, "offset", 0)
	return limit, offset, err
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(r *http.Request, name string, def int) (int, error) {
	v, ok := r.URL.Query()[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	if err != nil || n < 0 {
		return 0, errs.New(errs.Invalid, "%s must be a non-negative integer", name)
	}
	return n, nil
}

var statuses = []string{db.StatusPending, db.StatusSent, db.StatusCompleted, db.StatusExpired}

func parseStatuses(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		ok := false
		for _, known := range statuses {
			ok = ok || s == known
		}
		if !ok {
			return nil, errs.New(errs.Invalid, "status must be one of pending, sent, completed, expired")
		}
		out = append(out, s)
	}
	return out, nil
}

func (h *Handler) listSurveys(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query(), listParams); err != nil {
		WriteError(w, r, err)
		return
	}
	limit, offset, err := queryPage(r) // ranges are the service's to check
	if err != nil {
		WriteError(w, r, err)
		return
	}
	f, err := ParseFilter(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	page, err := h.Svc.List(r.Context(), f, limit, offset)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeList(w, page, limit, offset)
}

// writeList writes {"data": [surveys], "total", "limit", "offset"} with
// survey.AppendJSON, as encoding/json would (list_test.go compares them).
func writeList(w http.ResponseWriter, page survey.Page, limit, offset int) {
	buf := getBuf()
	defer putBuf(buf)
	b := append(buf.AvailableBuffer(), `{"data":[`...)
	for i := range page.Surveys {
		if i > 0 {
			b = append(b, ',')
		}
		b = survey.AppendJSON(b, &page.Surveys[i])
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(page.Total), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(offset), 10)
	buf.Write(append(b, "}\n"...)) // Encoder.Encode ends with a newline too
	writeBody(w, http.StatusOK, buf.Bytes())
}

func (h *Handler) getSurvey(w http.ResponseWriter, r *http.Request) {
	sv, err := h.Svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, survey.ToJSON(sv))
}

type intakeRequest struct {
	ConversationID *string `json:"conversation_id"`
	ContactEmail   *string `json:"contact_email"`
	ContactName    *string `json:"contact_name"`
	ResolvedAt     *string `json:"resolved_at"`
	AgentID        *string `json:"agent_id"`
	TeamID         *string `json:"team_id"`
	Channel        *string `json:"channel"`
	Locale         *string `json:"locale"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type skippedResponse struct {
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	ConversationID string `json:"conversation_id"`
}

func (h *Handler) intake(w http.ResponseWriter, r *http.Request) {
	var req intakeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	in := survey.IntakeInput{
		ConversationID: deref(req.ConversationID),
		ContactEmail:   deref(req.ContactEmail),
		ContactName:    deref(req.ContactName),
		AgentID:        deref(req.AgentID),
		TeamID:         deref(req.TeamID),
		Channel:        deref(req.Channel),
		Locale:         deref(req.Locale),
	}
	if req.ResolvedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *req.ResolvedAt)
		if err != nil {
			WriteError(w, r, &errs.Error{Code: errs.Invalid, Message: "resolved_at must be an RFC 3339 time like 2026-03-07T14:00:00Z",
				Fields: map[string]string{"resolved_at": "not an RFC 3339 time"}})
			return
		}
		in.ResolvedAt = &t
	}
	res, err := h.Svc.Intake(r.Context(), in)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	switch {
	case res.Skipped != "":
		WriteJSON(w, http.StatusOK, skippedResponse{Status: "skipped", Reason: res.Skipped, ConversationID: in.ConversationID})
	case res.Created:
		WriteJSON(w, http.StatusCreated, survey.ToJSON(res.Survey))
	default:
		WriteJSON(w, http.StatusOK, survey.ToJSON(res.Survey))
	}
}

func (h *Handler) getConfig(w http.ResponseWriter, r *http.Request) {
	c, err := h.Svc.Config(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, survey.ConfigToJSON(c))
}

type configRequest struct {
	Enabled          *bool     `json:"enabled"`
	SurveyDelayHours *int      `json:"survey_delay_hours"`
	SurveyExpiryDays *int      `json:"survey_expiry_days"`
	BrandName        *string   `json:"brand_name"`
	LogoURL          *string   `json:"logo_url"`
	AccentColor      *string   `json:"accent_color"`
	DefaultLocale    *string   `json:"default_locale"`
	EmailSubject     *string   `json:"email_subject"`
	EmailMessage     *string   `json:"email_message"`
	ButtonLabels     *[]string `json:"button_labels"`
}

func (h *Handler) putConfig(w http.ResponseWriter, r *http.Request) {
	// Decode numbers as raw first so 4.5 and "4" are told apart from 4.
	var raw map[string]json.RawMessage
	if err := decodeJSON(w, r, &raw); err != nil {
		WriteError(w, r, err)
		return
	}
	var req configRequest
	if err := strictFields(raw, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	c, err := h.Svc.UpdateConfig(r.Context(), survey.ConfigPatch{
		Enabled: req.Enabled, SurveyDelayHours: req.SurveyDelayHours, SurveyExpiryDays: req.SurveyExpiryDays,
		Customer: survey.Customer{
			BrandName: req.BrandName, LogoURL: req.LogoURL, AccentColor: req.AccentColor, DefaultLocale: req.DefaultLocale,
			EmailSubject: req.EmailSubject, EmailMessage: req.EmailMessage, ButtonLabels: req.ButtonLabels,
		},
	})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, survey.ConfigToJSON(c))
}

// strictFields decodes an already-parsed object into v, refusing unknown
// fields and explicit nulls.
func strictFields(raw map[string]json.RawMessage, v any) error {
	for k, val := range raw {
		if string(val) == "null" {
			return &errs.Error{Code: errs.Invalid, Message: k + " must not be null", Fields: map[string]string{k: "must not be null"}}
		}
	}
	b, _ := json.Marshal(raw)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	return nil
}

// wantsHTML reports whether the client is a browser asking for a page.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

type answerResponse struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Rating      *int    `json:"rating"`
	Feedback    *string `json:"feedback"`
	RespondedAt *string `json:"responded_at"`
}

func answerJSON(s *db.Survey) answerResponse {
	j := survey.ToJSON(s)
	return answerResponse{ID: j.ID, Status: j.Status, Rating: j.Rating, Feedback: j.Feedback, RespondedAt: j.RespondedAt}
}

func (h *Handler) rate(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	rating, err := survey.ParseRating(r.URL.Query().Get("rating"))
	var sv *db.Survey
	if err == nil {
		sv, err = h.Svc.Rate(r.Context(), token, rating)
	}
	if wantsHTML(r) {
		h.ratePage(w, r, token, sv, err)
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, answerJSON(sv))
}

// rateHead answers like GET would, without recording anything: link
// checkers use HEAD.
func (h *Handler) rateHead(w http.ResponseWriter, r *http.Request) {
	_, err := survey.ParseRating(r.URL.Query().Get("rating"))
	if err == nil {
		var sv *db.Survey
		sv, err = h.Svc.Lookup(r.Context(), r.URL.Query().Get("token"))
		if err == nil && survey.LinkExpired(sv, h.Svc.Clock()) {
			err = errs.ErrExpired
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(HTTPStatus(err))
}

// ratePage answers a browser's one-click: a thank-you page in the
// survey's language that offers the feedback box.
func (h *Handler) ratePage(w http.ResponseWriter, r *http.Request, token string, sv *db.Survey, err error) {
	if err != nil {
		var d view.PageData
		if known, lerr := h.Svc.Lookup(r.Context(), token); lerr == nil {
			d = h.Svc.SurveyPage(r.Context(), known)
		}
		view.RenderErrorPage(w, r, err, d)
		return
	}
	d := h.Svc.SurveyPage(r.Context(), sv)
	d.Action = "/s/" + token
	if sv.Rating != nil {
		d.Rating = *sv.Rating
	}
	view.Render(w, r, http.StatusOK, view.PageThanks, d)
}

type submitRequest struct {
	Rating   json.RawMessage `json:"rating"`
	Feedback *string         `json:"feedback"`
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request) {
	var req submitRequest
	if err := decodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	rating, err := survey.ParseRatingJSON(req.Rating)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	sv, err := h.Svc.Submit(r.Context(), chi.URLParam(r, "token"), rating, req.Feedback)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, answerJSON(sv))
}
