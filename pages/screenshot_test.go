package pages_test

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

var screenshots = flag.String("screenshots", "", "save screenshots of the email and the pages into this directory (make screenshots)")

// TestScreenshots saves PNGs of what the customer sees, on a desktop and a
// phone width: the survey email, the survey page, the one-click thank-you
// page and the expired page. Only with -screenshots=DIR:
//
//	go test ./pages -run TestScreenshots -args -screenshots=../docs
func TestScreenshots(t *testing.T) {
	if *screenshots == "" {
		t.Skip("no -screenshots directory given")
	}
	if err := os.MkdirAll(*screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")
	if r := s.Do(t, "PUT", "/api/v1/csat/config", key, map[string]any{"accent_color": "#4f46e5"}); r.Status != 200 {
		t.Fatalf("config: %d %s", r.Status, r.Body)
	}
	sv := send(t, s, tenantID, key, map[string]any{"conversation_id": "shot-1", "contact_email": "jane@example.com", "contact_name": "Jane"})
	thanks := send(t, s, tenantID, key, map[string]any{"conversation_id": "shot-2", "contact_email": "wade@example.com", "contact_name": "Wade"})
	expired := send(t, s, tenantID, key, map[string]any{"conversation_id": "shot-3", "contact_email": "old@example.com"})
	_, err := s.Admin.NewUpdate().Model((*db.Survey)(nil)).Set("expires_at = now() - interval '1 minute'").
		Where("tenant_id = ? AND id = ?", tenantID, expired.ID).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The email's HTML part, served as a mail client would show it.
	mailSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(sv.Email.HTML))
	}))
	defer mailSrv.Close()

	for _, size := range []struct {
		suffix        string
		width, height int64
	}{{"", 1024, 760}, {"-phone", 390, 780}} {
		b := newBrowser(t, size.width, size.height, true)
		shot := func(name string, steps ...chromedp.Action[chromedp.Void]) {
			b.do(t, name, steps...)
			ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
			defer cancel()
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			out := filepath.Join(*screenshots, name+size.suffix+".png")
			if err := os.WriteFile(out, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d KiB)", out, len(png)/1024)
		}
		shot("survey-email", chromedp.Navigate(mailSrv.URL))
		shot("survey-page", chromedp.Navigate(sv.Page), chromedp.WaitVisible(chromedp.ID("feedback")),
			chromedp.Click(chromedp.CSS(`.stars label:nth-of-type(4)`)),
			chromedp.SendKeys(chromedp.ID("feedback"), "Quick answer and a friendly tone. Thank you!"),
			chromedp.Blur(chromedp.ID("feedback")))
		shot("survey-thanks", chromedp.Navigate(thanks.Rate[4]), chromedp.WaitVisible(chromedp.ID("feedback")))
		shot("survey-expired", chromedp.Navigate(expired.Page), chromedp.WaitVisible(chromedp.CSS("h1")))
	}
}
