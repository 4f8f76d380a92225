package pages_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// browser is a headless Chromium tab that keeps the page's console errors
// (a CSP violation shows up there).
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func chromiumPath() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless Chromium, or skips the test when there is
// none. With js false, the page runs no script at all.
func newBrowser(t *testing.T, width, height int64, js bool) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no Chromium on this machine (apt-get install -y chromium): browser test skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if !js {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("disable JavaScript: %v", err)
		}
	}
	b := &browser{ctx: ctx}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errs = append(b.errs, m.Text)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs steps with a deadline, failing the test on error.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
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
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Errorf("console errors (CSP violations?): %v", b.errs)
	}
}

// TestBrowserSurvey opens the links of a real email in headless Chromium,
// picks a star, types feedback and submits, with and without JavaScript,
// and finds the answer stored.
func TestBrowserSurvey(t *testing.T) {
	if chromiumPath() == "" {
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
