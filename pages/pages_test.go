package pages_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// This package's Redis database number.
const redisDB = 7

// due is a resolved_at that makes a survey due now with the default 2 h delay.
func due() string { return time.Now().Add(-2*time.Hour - time.Second).UTC().Format(time.RFC3339) }

// sent is a survey whose email arrived.
type sent struct {
	ID       string
	Email    testenv.Email
	Rate     []string // one-click links, rating 1 first
	Page     string   // the full survey link
	Unsub    string   // the List-Unsubscribe link
	TenantID string
}

// send reports a resolved conversation and waits for its survey email.
func send(t *testing.T, s *testenv.Service, tenantID, key string, body map[string]any) sent {
	t.Helper()
	body["resolved_at"] = due()
	res := s.Do(t, "POST", "/api/v1/csat/surveys", key, body)
	if res.Status != 201 {
		t.Fatalf("intake: %d %s", res.Status, res.Body)
	}
	to := body["contact_email"].(string)
	mails := s.SMTP.WaitFor(t, to, 1, 20*time.Second)
	e := mails[len(mails)-1]
	out := sent{ID: res.Map(t)["id"].(string), Email: e, TenantID: tenantID}
	// The email leaves inside the send transaction: its links work once
	// that commits.
	testenv.Eventually(t, 5*time.Second, "survey sent", func() bool { return getSurvey(t, s, tenantID, out.ID).Status == db.StatusSent })
	for _, l := range e.Links() {
		switch {
		case strings.Contains(l, "/api/v1/csat/rate?"):
			out.Rate = append(out.Rate, l)
		case strings.Contains(l, "/s/"):
			out.Page = l
		}
	}
	if len(out.Rate) != 5 || out.Page == "" {
		t.Fatalf("email has %d rate links and page %q:\n%s", len(out.Rate), out.Page, e.Text)
	}
	out.Unsub = strings.Trim(e.Header.Get("List-Unsubscribe"), "<>")
	return out
}

func getSurvey(t *testing.T, s *testenv.Service, tenantID, id string) *db.Survey {
	t.Helper()
	sv, err := db.GetSurvey(context.Background(), s.Admin, tenantID, id)
	if err != nil {
		t.Fatalf("load survey: %v", err)
	}
	return sv
}

func checkPageHeaders(t *testing.T, r testenv.Response) {
	t.Helper()
	h := r.Header
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("content type %q, want HTML", h.Get("Content-Type"))
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the token would leak", h.Get("Referrer-Policy"))
	}
	if len(r.Body) > 30<<10 {
		t.Errorf("page is %d bytes, over 30 KB", len(r.Body))
	}
}

func TestSurveyPageFormPost(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")
	sv := send(t, s, tenantID, key, map[string]any{
		"conversation_id": "conv-de", "contact_email": "hans@example.com", "contact_name": "Hans", "locale": "de-AT",
	})
	if !strings.Contains(sv.Email.Subject, "Wie war Acme Support?") {
		t.Errorf("German subject expected, got %q", sv.Email.Subject)
	}
	if !strings.Contains(sv.Email.HTML, `<html lang="de">`) || !strings.Contains(sv.Email.Text, "Hallo Hans,") {
		t.Error("email is not in German")
	}

	page := s.Do(t, "GET", sv.Page, "", nil)
	if page.Status != 200 || !strings.Contains(string(page.Body), `<html lang="de">`) ||
		!strings.Contains(string(page.Body), "<legend>Ihre Bewertung</legend>") {
		t.Fatalf("survey page: %d\n%s", page.Status, page.Body)
	}
	checkPageHeaders(t, page)

	// No rating: the form comes back with the message and what was typed.
	bad := s.Do(t, "POST", sv.Page, "", "feedback=kept+text", "Content-Type", "application/x-www-form-urlencoded")
	if bad.Status != 400 || !strings.Contains(string(bad.Body), `role="alert"`) || !strings.Contains(string(bad.Body), "kept text</textarea>") {
		t.Fatalf("post without rating: %d\n%s", bad.Status, bad.Body)
	}
	long := url.Values{"rating": {"4"}, "feedback": {strings.Repeat("x", 5001)}}.Encode()
	if r := s.Do(t, "POST", sv.Page, "", long, "Content-Type", "application/x-www-form-urlencoded"); r.Status != 400 {
		t.Fatalf("too long feedback: %d", r.Status)
	}

	form := url.Values{"rating": {"4"}, "feedback": {"Schnell & freundlich"}}.Encode()
	done := s.Do(t, "POST", sv.Page, "", form, "Content-Type", "application/x-www-form-urlencoded")
	if done.Status != 200 || !strings.Contains(string(done.Body), "Vielen Dank!") || strings.Contains(string(done.Body), "<textarea") {
		t.Fatalf("submit: %d\n%s", done.Status, done.Body)
	}
	got := getSurvey(t, s, tenantID, sv.ID)
	if got.Status != db.StatusCompleted || got.Rating == nil || *got.Rating != 4 || got.Feedback == nil || *got.Feedback != "Schnell & freundlich" {
		t.Fatalf("stored %+v", got)
	}
}

func TestOneClickThanksOffersFeedback(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")
	sv := send(t, s, tenantID, key, map[string]any{"conversation_id": "c1", "contact_email": "ana@example.com", "locale": "es"})
	r := s.Do(t, "GET", sv.Rate[4], "", nil, "Accept", "text/html,application/xhtml+xml")
	body := string(r.Body)
	if r.Status != 200 || !strings.Contains(body, "¡Gracias!") || !strings.Contains(body, `<textarea id="feedback"`) ||
		!strings.Contains(body, `value="5" checked`) {
		t.Fatalf("one-click thanks: %d\n%s", r.Status, body)
	}
	checkPageHeaders(t, r)
	if got := getSurvey(t, s, tenantID, sv.ID); got.Rating == nil || *got.Rating != 5 {
		t.Fatalf("rating not stored: %+v", got)
	}
}

func TestFriendlyErrorPages(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")
	sv := send(t, s, tenantID, key, map[string]any{"conversation_id": "c1", "contact_email": "fr@example.com", "locale": "fr"})
	_, err := s.Admin.NewUpdate().Model((*db.Survey)(nil)).Set("expires_at = now() - interval '1 minute'").
		Where("tenant_id = ? AND id = ?", tenantID, sv.ID).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, path string
		headers            []string
		status             int
		want               string
	}{
		{"page-expired-410", "GET", sv.Page, nil, 410, "Cette enquête est close"},
		{"post-expired-410", "POST", sv.Page, []string{"Content-Type", "application/x-www-form-urlencoded"}, 410, "Cette enquête est close"},
		{"oneclick-expired-410", "GET", sv.Rate[2], []string{"Accept", "text/html"}, 410, "Cette enquête est close"},
		{"unknown-404", "GET", "/s/ten_nope.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, 404, "We could not find this survey"},
		{"garbage-404-spanish", "GET", "/s/garbage", []string{"Accept-Language", "es-MX,es;q=0.9"}, 404, "No encontramos esta encuesta"},
		{"unsubscribe-unknown-404", "GET", "/u/ten_x.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, 404, "We could not find this survey"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.method == "POST" {
				body = "rating=3"
			}
			r := s.Do(t, c.method, c.path, "", body, c.headers...)
			if r.Status != c.status || !strings.Contains(string(r.Body), c.want) {
				t.Fatalf("%d, want %d with %q:\n%s", r.Status, c.status, c.want, r.Body)
			}
			checkPageHeaders(t, r)
		})
	}
}

func TestUnsubscribe(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")
	other, otherKey := s.NewTenant(t, "Other Co")
	sv := send(t, s, tenantID, key, map[string]any{"conversation_id": "c1", "contact_email": "Jo@Example.com"})
	if sv.Email.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.Contains(sv.Unsub, "/u/ten_") {
		t.Fatalf("unsubscribe headers: %v", sv.Email.Header)
	}
	if !strings.Contains(sv.Email.Text, sv.Unsub) || !strings.Contains(sv.Email.HTML, sv.Unsub) {
		t.Error("the unsubscribe link is not in both parts")
	}
	// The unsubscribe secret is its own: not the survey token.
	if strings.Contains(sv.Page, strings.TrimPrefix(sv.Unsub[strings.Index(sv.Unsub, "/u/")+3:], tenantID+".")) {
		t.Fatal("unsubscribe link reuses the survey token")
	}
	// A survey already pending for the contact is not sent after the opt-out.
	pending := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": "c-pending", "contact_email": "jo@example.com", "resolved_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	})
	if pending.Status != 201 {
		t.Fatalf("pending intake: %d %s", pending.Status, pending.Body)
	}

	// GET only asks (mail scanners open links).
	confirm := s.Do(t, "GET", sv.Unsub, "", nil)
	if confirm.Status != 200 || !strings.Contains(string(confirm.Body), `<form method="post"`) {
		t.Fatalf("confirm page: %d %s", confirm.Status, confirm.Body)
	}
	checkPageHeaders(t, confirm)
	if n, _ := s.Admin.NewSelect().Model((*db.Unsubscribe)(nil)).Count(context.Background()); n != 0 {
		t.Fatal("a GET unsubscribed")
	}
	// RFC 8058 one-click POST, twice.
	for range 2 {
		r := s.Do(t, "POST", sv.Unsub, "", "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
		if r.Status != 200 || !strings.Contains(string(r.Body), "You are unsubscribed") {
			t.Fatalf("one-click unsubscribe: %d %s", r.Status, r.Body)
		}
	}

	again := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "c2", "contact_email": "JO@example.COM"})
	if m := again.Map(t); again.Status != 200 || m["status"] != "skipped" || m["reason"] != "unsubscribed" {
		t.Fatalf("intake after opt-out: %d %s", again.Status, again.Body)
	}
	// Another tenant still surveys the same address.
	if r := s.Do(t, "POST", "/api/v1/csat/surveys", otherKey, map[string]any{"conversation_id": "c2", "contact_email": "jo@example.com"}); r.Status != 201 {
		t.Fatalf("other tenant intake: %d %s (tenant %s)", r.Status, r.Body, other)
	}

	// Make the pending one due: the sweep/send expires it unsent.
	pid := pending.Map(t)["id"].(string)
	_, err := s.Admin.NewUpdate().Model((*db.Survey)(nil)).Set("scheduled_for = now() - interval '1 second'").
		Where("tenant_id = ? AND id = ?", tenantID, pid).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Svc.Send(context.Background(), tenantID, pid); err != nil {
		t.Fatal(err)
	}
	if got := getSurvey(t, s, tenantID, pid); got.Status != db.StatusExpired || got.SentAt != nil {
		t.Fatalf("pending survey of an opted-out contact: %s", got.Status)
	}
	if n := len(s.SMTP.To("jo@example.com")); n != 1 {
		t.Fatalf("%d emails to the opted-out contact, want only the first", n)
	}
}
