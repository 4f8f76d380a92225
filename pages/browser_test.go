package pages_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
	"github.com/csat/csat/testenv/browsertest"
)

// browser is a headless Chromium tab that keeps the page's console errors
// (a CSP violation shows up there).
type browser struct {
	*browsertest.Browser
	ctx context.Context
}

// newBrowser starts headless Chromium, or skips the test when there is
// none. With js false, the page runs no script at all.
func newBrowser(t *testing.T, width, height int64, js bool) *browser {
	t.Helper()
	b := browsertest.New(t, browsertest.Options{Width: width, Height: height, NoJS: !js})
	return &browser{Browser: b, ctx: b.Ctx}
}

// do runs steps with a deadline, failing the test on error.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	b.Do(t, what, steps...)
}

// text is the text of the first element matching a CSS selector.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func (b *browser) noConsoleErrors(t *testing.T) {
	t.Helper()
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors (CSP violations?): %v", errs)
	}
}

// TestBrowserSurvey opens the links of a real email in headless Chromium,
// picks a star, types feedback and submits, with and without JavaScript,
// and finds the answer stored.
func TestBrowserSurvey(t *testing.T) {
	if !browsertest.Available() {
		t.Skip("no Chromium on this machine (apt-get install -y chromium): browser test skipped")
	}
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme Support")

	t.Run("javascript-one-click-then-feedback", func(t *testing.T) {
		sv := send(t, s, tenantID, key, map[string]any{"conversation_id": "b-js", "contact_email": "js@example.com", "contact_name": "Jane"})
		b := newBrowser(t, 390, 844, true)
		// The one-click link: recorded, and the thank-you page offers the form.
		b.do(t, "open one-click link", chromedp.Navigate(sv.Rate[2]), chromedp.WaitVisible(chromedp.ID("feedback")))
		if h := b.text(t, "h1"); h != "Thank you!" {
			t.Fatalf("one-click page heading %q", h)
		}
		if got := getSurvey(t, s, tenantID, sv.ID); got.Rating == nil || *got.Rating != 3 {
			t.Fatalf("one-click not stored: %+v", got.Rating)
		}
		b.do(t, "pick 4 stars and type",
			chromedp.Click(chromedp.CSS(`.stars label:nth-of-type(4)`)),
			chromedp.SendKeys(chromedp.ID("feedback"), "Quick and kind."))
		if c := b.text(t, "#count"); c != "15 / 5000" {
			t.Errorf("live character count shows %q, want 15 / 5000", c)
		}
		if h := b.text(t, ".hints"); h != "4/5 · Satisfied" {
			t.Errorf("rating hint %q", h)
		}
		b.do(t, "submit", chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitNotPresent(chromedp.ID("feedback")))
		if p := b.text(t, "main p"); !strings.Contains(p, "Your rating of 4 out of 5 was recorded.") {
			t.Errorf("thank-you text %q", p)
		}
		got := getSurvey(t, s, tenantID, sv.ID)
		if got.Status != db.StatusCompleted || got.Rating == nil || *got.Rating != 4 || got.Feedback == nil || *got.Feedback != "Quick and kind." {
			t.Fatalf("stored rating %v feedback %v", got.Rating, got.Feedback)
		}
		b.noConsoleErrors(t)
	})

	t.Run("no-javascript-keyboard", func(t *testing.T) {
		sv := send(t, s, tenantID, key, map[string]any{"conversation_id": "b-nojs", "contact_email": "nojs@example.com", "locale": "fr"})
		b := newBrowser(t, 1024, 768, false)
		b.do(t, "open survey link", chromedp.Navigate(sv.Page), chromedp.WaitVisible(chromedp.ID("feedback")))
		if h := b.text(t, "h1"); h != "Comment avons-nous fait ?" {
			t.Fatalf("page heading %q, want French", h)
		}
		// Keyboard only: focus a star, arrow keys move the choice (radio group).
		b.do(t, "choose with the keyboard",
			chromedp.Focus(chromedp.CSS(`input[name=rating][value="2"]`)),
			chromedp.KeyEvent(kb.ArrowRight),
			chromedp.KeyEvent(kb.ArrowRight),
			chromedp.SendKeys(chromedp.ID("feedback"), "Sans JavaScript"))
		if c := b.text(t, "#count"); c != "Jusqu’à 5000 caractères" {
			t.Errorf("without JavaScript the count shows %q: did a script run?", c)
		}
		b.do(t, "submit", chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitNotPresent(chromedp.ID("feedback")))
		if h := b.text(t, "h1"); h != "Merci !" {
			t.Errorf("thank-you heading %q", h)
		}
		got := getSurvey(t, s, tenantID, sv.ID)
		if got.Status != db.StatusCompleted || got.Rating == nil || *got.Rating != 4 || got.Feedback == nil || *got.Feedback != "Sans JavaScript" {
			t.Fatalf("stored rating %v feedback %v", got.Rating, got.Feedback)
		}
		b.noConsoleErrors(t)
	})
}
