package app_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// This package's Redis database number.
const redisDB = 1

// due is a resolved_at that makes a survey due now with the default 2 h delay.
func due() string { return time.Now().Add(-2*time.Hour - time.Second).UTC().Format(time.RFC3339) }

func intake(t *testing.T, s *testenv.Service, key, conv, email string) map[string]any {
	t.Helper()
	res := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": conv, "contact_email": email, "contact_name": "Jane", "resolved_at": due(),
	})
	if res.Status != 201 {
		t.Fatalf("intake: %d %s", res.Status, res.Body)
	}
	return res.Map(t)
}

// rateLinks returns the five one-click links and the survey page link of
// the email sent to addr.
func rateLinks(t *testing.T, e testenv.Email) (rate []string, page string) {
	t.Helper()
	for _, l := range e.Links() {
		switch {
		case strings.Contains(l, "/api/v1/csat/rate?"):
			rate = append(rate, l)
		case strings.Contains(l, "/s/"):
			page = l
		}
	}
	if len(rate) != 5 || page == "" {
		t.Fatalf("email has %d rate links and page %q:\n%s", len(rate), page, e.Text)
	}
	return rate, page
}

func tokenOf(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if tok := u.Query().Get("token"); tok != "" {
		return tok
	}
	return strings.TrimPrefix(u.Path, "/s/")
}

func getSurvey(t *testing.T, s *testenv.Service, tenantID, id string) *db.Survey {
	t.Helper()
	sv, err := db.GetSurvey(context.Background(), s.Admin, tenantID, id)
	if err != nil {
		t.Fatalf("load survey: %v", err)
	}
	return sv
}

func TestLifecycle(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")

	created := intake(t, s, key, "conv-1", "jane@example.com")
	if created["status"] != "pending" || !strings.HasPrefix(created["id"].(string), "csat_") {
		t.Fatalf("intake answered %v", created)
	}
	// Idempotent per conversation.
	again := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "conv-1", "contact_email": "other@example.com"})
	if again.Status != 200 || again.Map(t)["id"] != created["id"] {
		t.Fatalf("repeat intake: %d %s", again.Status, again.Body)
	}

	mails := s.SMTP.WaitFor(t, "jane@example.com", 1, 15*time.Second)
	if mails[0].HTML == "" || !strings.Contains(mails[0].Subject, "Acme Support") {
		t.Fatalf("email lacks html or tenant name: %q", mails[0].Subject)
	}
	rate, page := rateLinks(t, mails[0])
	for i, l := range rate {
		if !strings.HasSuffix(l, fmt.Sprintf("rating=%d", i+1)) || !strings.HasPrefix(l, s.URL) {
			t.Fatalf("rate link %d is %s", i+1, l)
		}
	}
	id := created["id"].(string)
	// The email leaves just before the send commits.
	testenv.Eventually(t, 5*time.Second, "survey marked sent", func() bool { return getSurvey(t, s, tenantID, id).Status == db.StatusSent })
	sv := getSurvey(t, s, tenantID, id)
	if sv.Status != db.StatusSent || sv.SentAt == nil || sv.ExpiresAt == nil {
		t.Fatalf("after send: %+v", sv)
	}
	if d := sv.ExpiresAt.Sub(*sv.SentAt); d != 7*24*time.Hour {
		t.Fatalf("expires %s after sending, want 7 days", d)
	}
	token := tokenOf(t, rate[0])
	if strings.Contains(string(sv.TokenHash), token) || len(sv.TokenHash) != 32 {
		t.Fatal("token must be stored as a SHA-256 hash only")
	}

	// HEAD never records.
	if r := s.Do(t, "HEAD", rate[3], "", nil); r.Status != 200 {
		t.Fatalf("HEAD: %d", r.Status)
	}
	if getSurvey(t, s, tenantID, id).Rating != nil {
		t.Fatal("HEAD recorded a rating")
	}

	// One-click, JSON client.
	r := s.Do(t, "GET", rate[3], "", nil)
	if r.Status != 200 || r.Map(t)["rating"] != 4.0 || r.Map(t)["status"] != "completed" {
		t.Fatalf("one-click: %d %s", r.Status, r.Body)
	}
	// A later click changes the rating; a browser gets a page with a form.
	r = s.Do(t, "GET", rate[4], "", nil, "Accept", "text/html")
	if r.Status != 200 || !strings.Contains(string(r.Body), "<form") || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser click: %d %s", r.Status, r.Body)
	}
	if got := getSurvey(t, s, tenantID, id); *got.Rating != 5 || got.Status != db.StatusCompleted || got.RespondedAt == nil {
		t.Fatalf("after clicks: rating %v status %s", got.Rating, got.Status)
	}

	// The full survey page and the JSON submit.
	if r := s.Do(t, "GET", page, "", nil); r.Status != 200 || !strings.Contains(string(r.Body), `name="rating"`) {
		t.Fatalf("survey page: %d", r.Status)
	}
	r = s.Do(t, "POST", "/api/v1/csat/"+token+"/submit", "", map[string]any{"rating": 3, "feedback": "Took a while."})
	if r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	if got := getSurvey(t, s, tenantID, id); *got.Rating != 3 || got.Feedback == nil || *got.Feedback != "Took a while." {
		t.Fatalf("after submit: %+v", got)
	}
	// The no-JavaScript form post.
	form := url.Values{"rating": {"2"}, "feedback": {"Form post"}}
	r = s.Do(t, "POST", page, "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.Status != 200 || getSurvey(t, s, tenantID, id).Feedback == nil || *getSurvey(t, s, tenantID, id).Feedback != "Form post" {
		t.Fatalf("form post: %d %s", r.Status, r.Body)
	}

	// The list shows it in the documented shape.
	list := s.Do(t, "GET", "/api/v1/csat/surveys?limit=10", key, nil).Map(t)
	if list["total"] != 1.0 || list["limit"] != 10.0 || list["offset"] != 0.0 {
		t.Fatalf("list: %v", list)
	}
	item := list["data"].([]any)[0].(map[string]any)
	for _, f := range []string{"id", "conversation_id", "contact_email", "rating", "feedback", "status", "sent_at", "responded_at"} {
		if _, ok := item[f]; !ok {
			t.Errorf("list item lacks %s", f)
		}
	}
	if sent := item["sent_at"].(string); !strings.HasSuffix(sent, "Z") {
		t.Errorf("sent_at %q is not UTC with Z", sent)
	}

	// After expires_at both public endpoints answer 410 whatever the job did.
	if _, err := s.Admin.NewRaw("UPDATE surveys SET expires_at = now() - interval '1 second' WHERE id = ?", id).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "GET", rate[0], "", nil); r.Status != 410 {
		t.Fatalf("expired click: %d", r.Status)
	}
	if r := s.Do(t, "GET", rate[0], "", nil, "Accept", "text/html"); r.Status != 410 || !strings.Contains(string(r.Body), "<html") {
		t.Fatalf("expired click in a browser: %d", r.Status)
	}
	if r := s.Do(t, "POST", "/api/v1/csat/"+token+"/submit", "", map[string]any{"rating": 1}); r.Status != 410 {
		t.Fatalf("expired submit: %d", r.Status)
	}
	if r := s.Do(t, "GET", page, "", nil); r.Status != 410 {
		t.Fatalf("expired page: %d", r.Status)
	}
	if got := getSurvey(t, s, tenantID, id); *got.Rating != 2 {
		t.Fatalf("expired link changed the rating to %d", *got.Rating)
	}
	if n := len(s.SMTP.To("jane@example.com")); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
}

func TestExpiryOfUnansweredSurvey(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Reconcile: 200 * time.Millisecond})
	tenantID, key := s.NewTenant(t, "Acme")
	id := intake(t, s, key, "conv-exp", "exp@example.com")["id"].(string)
	s.SMTP.WaitFor(t, "exp@example.com", 1, 15*time.Second)
	testenv.Eventually(t, 5*time.Second, "sent", func() bool { return getSurvey(t, s, tenantID, id).Status == db.StatusSent })
	if _, err := s.Admin.NewRaw("UPDATE surveys SET expires_at = now() WHERE id = ?", id).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "expired by the sweep", func() bool { return getSurvey(t, s, tenantID, id).Status == db.StatusExpired })
	// The expiry task at expires_at does the same when it runs, and does nothing twice.
	done, err := s.App.Svc.Expire(context.Background(), tenantID, id)
	if err != nil || done {
		t.Fatalf("second expiry: done=%v err=%v", done, err)
	}
}

func TestScannerRule(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	id := intake(t, s, key, "conv-scan", "scan@example.com")["id"].(string)
	rate, _ := rateLinks(t, s.SMTP.WaitFor(t, "scan@example.com", 1, 15*time.Second)[0])
	// The email leaves inside the send transaction; its token works once that commits.
	testenv.Eventually(t, 5*time.Second, "sent", func() bool { return getSurvey(t, s, tenantID, id).Status == db.StatusSent })
	for _, i := range []int{0, 1} {
		if r := s.Do(t, "GET", rate[i], "", nil); r.Status != 200 {
			t.Fatalf("click %d: %d", i+1, r.Status)
		}
	}
	if got := getSurvey(t, s, tenantID, id); got.Status != db.StatusCompleted || *got.Rating != 2 {
		t.Fatalf("two different clicks are a human changing their mind: %+v", got)
	}
	s.Do(t, "GET", rate[2], "", nil) // third different rating within 30 s
	got := getSurvey(t, s, tenantID, id)
	if got.Rating != nil || got.Status != db.StatusSent || !got.Flagged || got.RespondedAt != nil {
		t.Fatalf("scanner clicks not cleared: status %s rating %v flagged %v", got.Status, got.Rating, got.Flagged)
	}
	// Once the window has passed, a click records normally.
	if _, err := s.Admin.NewRaw(`UPDATE surveys SET last_clicks = ARRAY(
		SELECT t - interval '31 seconds' FROM unnest(last_clicks) WITH ORDINALITY AS c (t, i) ORDER BY i) WHERE id = ?`, id).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Do(t, "GET", rate[4], "", nil)
	if got := getSurvey(t, s, tenantID, id); got.Status != db.StatusCompleted || *got.Rating != 5 {
		t.Fatalf("later click: %+v", got)
	}
}

func TestDisabledAndLate(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	ctx := context.Background()

	// A survey whose whole window passed is never sent.
	old := time.Now().Add(-10 * 24 * time.Hour).UTC().Format(time.RFC3339)
	late := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "old", "contact_email": "old@example.com", "resolved_at": old}).Map(t)
	testenv.Eventually(t, 10*time.Second, "late survey expired", func() bool { return getSurvey(t, s, tenantID, late["id"].(string)).Status == db.StatusExpired })

	// Pending when CSAT gets disabled: expired, never sent.
	soon := time.Now().Add(-2*time.Hour + 2*time.Second).UTC().Format(time.RFC3339)
	p := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "p", "contact_email": "p@example.com", "resolved_at": soon}).Map(t)
	if r := s.Do(t, "PUT", "/api/v1/csat/config", key, map[string]any{"enabled": false}); r.Status != 200 || r.Map(t)["enabled"] != false {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	testenv.Eventually(t, 15*time.Second, "disabled survey expired", func() bool { return getSurvey(t, s, tenantID, p["id"].(string)).Status == db.StatusExpired })

	// While disabled, intake stores nothing and says so.
	r := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{"conversation_id": "skip", "contact_email": "s@example.com"})
	if r.Status != 200 || r.Map(t)["status"] != "skipped" {
		t.Fatalf("disabled intake: %d %s", r.Status, r.Body)
	}
	if _, err := db.GetSurveyByConversation(ctx, s.Admin, tenantID, "skip"); err == nil {
		t.Fatal("disabled intake stored a survey")
	}
	if n := len(s.SMTP.Messages()); n != 0 {
		t.Fatalf("%d emails sent, want none", n)
	}
}

func TestRedisFlushedWhilePending(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Reconcile: 300 * time.Millisecond})
	tenantID, key := s.NewTenant(t, "Acme")
	soon := time.Now().Add(-2*time.Hour + 3*time.Second).UTC().Format(time.RFC3339)
	var ids []string
	for i := range 5 {
		r := s.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
			"conversation_id": fmt.Sprintf("flush-%d", i), "contact_email": fmt.Sprintf("f%d@example.com", i), "resolved_at": soon})
		ids = append(ids, r.Map(t)["id"].(string))
	}
	if err := s.Redis.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		s.SMTP.WaitFor(t, fmt.Sprintf("f%d@example.com", i), 1, 20*time.Second)
	}
	// Let several more sweeps run: still one email each.
	time.Sleep(time.Second) // a fixed window in which a duplicate would show; nothing to poll for
	for i, id := range ids {
		if n := len(s.SMTP.To(fmt.Sprintf("f%d@example.com", i))); n != 1 {
			t.Errorf("survey %d got %d emails", i, n)
		}
		if getSurvey(t, s, tenantID, id).Status != db.StatusSent {
			t.Errorf("survey %d not sent", i)
		}
	}
}

func TestTaskDeliveredTwice(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	tenantID, key := s.NewTenant(t, "Acme")
	id := intake(t, s, key, "twice", "twice@example.com")["id"].(string)
	// No worker runs in the api role; deliver the task by hand, many times at once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.App.Svc.Send(context.Background(), tenantID, id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := s.App.Svc.Send(context.Background(), tenantID, id); err != nil {
		t.Fatal(err)
	}
	if n := len(s.SMTP.To("twice@example.com")); n != 1 {
		t.Fatalf("%d emails, want exactly 1", n)
	}
}

func TestSMTPOutageRetries(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	tenantID, key := s.NewTenant(t, "Acme")
	id := intake(t, s, key, "outage", "down@example.com")["id"].(string)
	s.SMTP.SetFail(func(string) bool { return true })
	if _, err := s.App.Svc.Send(context.Background(), tenantID, id); err == nil {
		t.Fatal("send succeeded with SMTP failing")
	}
	if got := getSurvey(t, s, tenantID, id); got.Status != db.StatusPending || got.SentAt != nil {
		t.Fatalf("failed send changed the survey: %+v", got)
	}
	s.SMTP.SetFail(nil)
	if out, err := s.App.Svc.Send(context.Background(), tenantID, id); err != nil || out != "sent" {
		t.Fatalf("retry: %v %v", out, err)
	}
}
