package rest

import (
	"encoding/csv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
)

type periodJSON struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone"`
}

// analyticsResponse is the documented shape plus satisfaction_score and
// period.timezone.
type analyticsResponse struct {
	Period             periodJSON     `json:"period"`
	TotalSurveysSent   int            `json:"total_surveys_sent"`
	TotalResponses     int            `json:"total_responses"`
	ResponseRate       float64        `json:"response_rate"`
	AverageRating      *float64       `json:"average_rating"`
	RatingDistribution map[string]int `json:"rating_distribution"`
	SatisfactionScore  float64        `json:"satisfaction_score"`
}

func (h *Handler) analytics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, analyticsParams); err != nil {
		WriteError(w, r, err)
		return
	}
	a, err := h.Svc.Analytics(r.Context(), survey.AnalyticsQuery{
		StartDate: q.Get("start_date"), EndDate: q.Get("end_date"), Timezone: q.Get("timezone"),
		Filter: survey.AnalyticsFilter{AgentID: q.Get("agent_id"), TeamID: q.Get("team_id"), Channel: q.Get("channel")},
	})
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := analyticsResponse{
		Period:             periodJSON{Start: a.Period.Start, End: a.Period.End, Timezone: a.Period.Timezone},
		TotalSurveysSent:   a.Sent,
		TotalResponses:     a.Responses(),
		ResponseRate:       a.ResponseRate(),
		AverageRating:      a.AverageRating(),
		RatingDistribution: map[string]int{},
		SatisfactionScore:  a.SatisfactionScore(),
	}
	for i, n := range a.Distribution {
		out.RatingDistribution[strconv.Itoa(i+1)] = n
	}
	WriteJSON(w, http.StatusOK, out)
}

// csvHeader names the export's columns, in order.
var csvHeader = []string{"id", "conversation_id", "contact_email", "contact_name", "status", "rating", "feedback",
	"agent_id", "team_id", "channel", "locale", "resolved_at", "scheduled_for", "sent_at", "responded_at",
	"expires_at", "created_at", "flagged"}

func csvRecord(sv *db.Survey) []string {
	j := survey.ToJSON(sv)
	opt := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	rating := ""
	if j.Rating != nil {
		rating = strconv.Itoa(*j.Rating)
	}
	return []string{j.ID, cell(j.ConversationID), cell(j.ContactEmail), cell(opt(j.ContactName)), j.Status, rating,
		cell(opt(j.Feedback)), cell(opt(j.AgentID)), cell(opt(j.TeamID)), cell(opt(j.Channel)), cell(opt(j.Locale)),
		j.ResolvedAt, j.ScheduledFor, opt(j.SentAt), opt(j.RespondedAt), opt(j.ExpiresAt), j.CreatedAt,
		strconv.FormatBool(j.Flagged)}
}

// cell defuses text a spreadsheet would run as a formula (customer
// feedback is untrusted): a leading = + - @ tab or CR gets a quote.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// exportSurveys streams the matching surveys as CSV, one row at a time
// from keyset batches. Errors before the first row are JSON; a failure
// mid-stream can only cut the download short (it is logged).
func (h *Handler) exportSurveys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, exportParams); err != nil {
		WriteError(w, r, err)
		return
	}
	if f := q.Get("format"); f != "" && f != "csv" {
		WriteError(w, r, invalidParam("format", "must be csv"))
		return
	}
	f, err := parseFilter(q)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	started := false
	cw := csv.NewWriter(w)
	flusher, _ := w.(http.Flusher)
	rows := 0
	err = h.Svc.Export(r.Context(), f, func(sv *db.Survey) error {
		if !started {
			startCSV(w, cw)
			started = true
		}
		if err := cw.Write(csvRecord(sv)); err != nil {
			return err
		}
		if rows++; rows%survey.ExportBatch == 0 {
			// A big export outlives the server's write timeout: each
			// batch that goes out earns more time.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute))
			cw.Flush()
			if flusher != nil {
				flusher.Flush()
			}
		}
		return cw.Error()
	})
	if err != nil && !started {
		WriteError(w, r, err)
		return
	}
	if err != nil {
		h.log().WarnContext(r.Context(), "export cut short", "rows", rows, "err", err)
		return
	}
	if !started {
		startCSV(w, cw) // no matches: the header alone
	}
	cw.Flush()
}

func startCSV(w http.ResponseWriter, cw *csv.Writer) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="csat-surveys.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = cw.Write(csvHeader)
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
