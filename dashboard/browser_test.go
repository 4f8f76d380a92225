package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/csat/csat/testenv"
	"github.com/csat/csat/testenv/browsertest"
)

// This package's Redis database number.
const redisDB = 10

// browser is a headless Chromium tab with the page's console errors kept.
type browser struct {
	*browsertest.Browser
	ctx context.Context
}

// newBrowser starts headless Chromium for the test, or skips the test when
// there is none (apt-get install chromium).
func newBrowser(t *testing.T, width, height int64) *browser {
	t.Helper()
	b := browsertest.New(t, browsertest.Options{Width: width, Height: height, Env: []string{"TZ=UTC"}})
	return &browser{Browser: b, ctx: b.Ctx}
}

// do runs steps with a deadline, failing the test on error.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	b.Do(t, what, steps...)
}

// eval evaluates a JavaScript expression in the page. It runs through the
// DevTools protocol, which the page's CSP does not restrict (chromedp's
// Poll builds functions with new Function, which the CSP forbids).
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is the trimmed text of the first element matching a CSS selector,
// "<missing>" when there is none.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	return eval[string](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.textContent.trim().replace(/\s+/g, ' ') : '<missing>'; })()`, q))
}

// cells is the text of a table body's cells, " " between cells and " | "
// between rows, or of a list's items joined by "; ".
func (b *browser) cells(t *testing.T, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	return eval[string](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return '<missing>';
		if (e.tagName === 'UL' || e.tagName === 'OL') return [...e.children].map(li => li.textContent.trim()).join('; ');
		return [...e.rows].map(r => [...r.cells].map(c => c.textContent.trim()).join(' ')).join(' | '); })()`, q))
}

// waitCells polls until cells(sel) is want.
func (b *browser) waitCells(t *testing.T, sel, want string) {
	t.Helper()
	var got string
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%s to show %q", sel, want), func() bool {
		got = b.cells(t, sel)
		return got == want
	})
}

// waitText polls until the element's text is want.
func (b *browser) waitText(t *testing.T, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := b.text(t, sel)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s shows %q, want %q", sel, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTrue polls until a JavaScript expression is true.
func (b *browser) waitTrue(t *testing.T, what, expr string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, what, func() bool { return eval[bool](t, b, expr) })
}

// card is the selector of a summary card's value or change line.
func card(metric, part string) string { return fmt.Sprintf(`.card[data-metric=%q] .%s`, metric, part) }

func (b *browser) consoleErrors() []string { return b.ConsoleErrors() }

// seed reports resolved conversations through the REST intake, waits for
// their survey emails and returns each one's one-click rating links, by
// conversation id.
func seed(t *testing.T, svc *testenv.Service, key string, convs ...conv) map[string][]string {
	t.Helper()
	resolved := time.Now().Add(-2*time.Hour - time.Minute).UTC().Format(time.RFC3339) // due now with the default 2 h delay
	for _, c := range convs {
		res := svc.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
			"conversation_id": c.id, "contact_email": c.email, "contact_name": c.name, "resolved_at": resolved,
			"agent_id": c.agent, "team_id": c.team, "channel": c.channel,
		})
		if res.Status != http.StatusCreated {
			t.Fatalf("intake %s: %d %s", c.id, res.Status, res.Body)
		}
	}
	links := map[string][]string{}
	for _, c := range convs {
		mail := svc.SMTP.WaitFor(t, c.email, 1, 20*time.Second)[0]
		for _, l := range mail.Links() {
			if strings.Contains(l, "/api/v1/csat/rate?") {
				links[c.id] = append(links[c.id], l)
			}
		}
		if len(links[c.id]) != 5 {
			t.Fatalf("email to %s has %d rating links:\n%s", c.email, len(links[c.id]), mail.Text)
		}
	}
	return links
}

type conv struct{ id, email, name, agent, team, channel string }

// rate clicks the one-click link for rating r (links are in order 1..5).
func rate(t *testing.T, svc *testenv.Service, links []string, r int) {
	t.Helper()
	res := svc.Do(t, "GET", links[r-1], "", nil, "Accept", "application/json")
	if res.Status != http.StatusOK {
		t.Fatalf("rate %d: %d %s", r, res.Status, res.Body)
	}
}

// TestDashboard signs in with a key, reads the numbers the test put there
// through the API, changes the range, sees a rating arrive live, saves the
// settings (and sees the API's validation message first), all in headless
// Chromium against the whole service.
func TestDashboard(t *testing.T) {
	b := newBrowser(t, 1280, 1000)
	svc := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, key := svc.NewTenant(t, "Acme Support")
	_, otherKey := svc.NewTenant(t, "Other Co")

	links := seed(t, svc, key,
		conv{"c1", "ana@example.com", "Ana", "alice", "support", "email"},
		conv{"c2", "ben@example.com", "Ben", "alice", "support", "chat"},
		conv{"c3", "cy@example.com", "Cy", "bob", "billing", "email"},
		conv{"c4", "dee@example.com", "Dee", "bob", "billing", "chat"},
	)
	rate(t, svc, links["c1"], 5)
	rate(t, svc, links["c2"], 4)
	rate(t, svc, links["c3"], 2)
	// Another tenant's data must never show.
	seed(t, svc, otherKey, conv{"x1", "x@example.com", "X", "zed", "other", "sms"})

	dash := svc.URL + "/dashboard/"
	t.Run("sign-in", func(t *testing.T) {
		b.do(t, "open the dashboard", chromedp.Navigate(dash), chromedp.WaitVisible(chromedp.ID("signin")))
		b.do(t, "sign in with a wrong key",
			chromedp.SendKeys(chromedp.ID("apikey"), "ak_live_not-a-real-key"),
			chromedp.Click(chromedp.CSS("#signin-form button")))
		b.waitText(t, "#signin-error", "This API key is not valid.")
		b.do(t, "sign in",
			chromedp.SetValue(chromedp.ID("apikey"), key),
			chromedp.Click(chromedp.CSS("#signin-form button")),
			chromedp.WaitVisible(chromedp.ID("dashboard")))
		if got := eval[string](t, b, `sessionStorage.getItem('csat.apiKey')`); got != key {
			t.Fatalf("session storage holds %q, want the key", got)
		}
	})

	t.Run("numbers", func(t *testing.T) {
		// 4 sent, 3 answered (5, 4, 2): 75 %, average 3.7, 2 of 3 satisfied.
		b.waitText(t, card("sent", "value"), "4")
		b.waitText(t, card("responses", "value"), "3")
		b.waitText(t, card("rate", "value"), "75.0%")
		b.waitText(t, card("average", "value"), "3.7 / 5")
		b.waitText(t, card("score", "value"), "66.7%")
		// Nothing in the 30 days before: counts rise from 0, rates have no base.
		b.waitText(t, card("sent", "delta"), "▲ up from 0 vs previous period")
		b.waitText(t, card("average", "delta"), "no data for the previous period")
		b.waitCells(t, "#dist-list", "5 stars: 1 (33%); 4 stars: 1 (33%); 3 stars: 0 (0%); 2 stars: 1 (33%); 1 stars: 0 (0%)")
		b.waitCells(t, "#breakdown tbody", "alice 2 2 100.0% 4.5 | bob 2 1 50.0% 2.0")
		b.do(t, "break down by channel", chromedp.Click(chromedp.CSS(`label[for="by-channel"]`)))
		b.waitCells(t, "#breakdown tbody", "chat 2 1 50.0% 4.0 | email 2 2 100.0% 3.5")
		b.waitText(t, "#resp-count", "3 surveys")
		b.waitTrue(t, "three rated responses listed", `document.querySelectorAll('#responses .response').length === 3`)
		if got := b.text(t, "#responses"); strings.Contains(got, "zed") || strings.Contains(got, "X ") {
			t.Fatalf("another tenant's survey is listed: %s", got)
		}
		// Filter by rating 2: only Cy.
		b.do(t, "filter rating 2", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#f-rating'); s.value = '2'; s.dispatchEvent(new Event('change', { bubbles: true })); })()`))
		b.waitText(t, "#resp-count", "1 survey")
		b.waitTrue(t, "only Cy listed", `[...document.querySelectorAll('#responses .who')].map(e => e.textContent).join() === 'Cy'`)
		b.do(t, "clear the rating filter", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#f-rating'); s.value = ''; s.dispatchEvent(new Event('change', { bubbles: true })); })()`))
		b.waitText(t, "#resp-count", "3 surveys")
	})

	t.Run("range", func(t *testing.T) {
		b.do(t, "choose a custom range in the past",
			chromedp.Click(chromedp.CSS(`label[for="preset-custom"]`)),
			chromedp.WaitVisible(chromedp.ID("custom-range")),
			chromedp.SetValue(chromedp.ID("start"), "2025-01-01"),
			chromedp.SetValue(chromedp.ID("end"), "2025-01-31"),
			chromedp.Click(chromedp.ID("apply-range")))
		b.waitText(t, card("sent", "value"), "0")
		b.waitText(t, card("average", "value"), "–")
		if got := b.text(t, "#period"); !strings.Contains(got, "Jan 1 – Jan 31, 2025") || !strings.Contains(got, "Dec 1 – Dec 31, 2024") {
			t.Fatalf("period line %q does not name the range and the previous one", got)
		}
		// By keyboard: the presets are a radio group, so an arrow key moves
		// from Custom round to 7 days.
		b.do(t, "back to 7 days with the keyboard", chromedp.Focus(chromedp.ID("preset-custom")), chromedp.KeyEvent(kb.ArrowRight))
		b.waitTrue(t, "7 days checked", `document.querySelector('#preset-7').checked`)
		b.waitText(t, card("sent", "value"), "4")
		b.do(t, "weekly trend", chromedp.Click(chromedp.CSS(`label[for="g-week"]`)))
		b.waitTrue(t, "one or two weekly buckets", `(n => n >= 1 && n <= 2)(document.querySelectorAll('#trend-table tbody tr').length)`)
	})

	t.Run("live", func(t *testing.T) {
		b.waitText(t, "#live", "Live")
		rate(t, svc, links["c4"], 3)
		b.waitTrue(t, "Dee's rating listed live", `[...document.querySelectorAll('#responses .who')].some(e => e.textContent === 'Dee')`)
		b.waitText(t, card("responses", "value"), "4")
		b.waitText(t, card("average", "value"), "3.5 / 5")
		b.waitText(t, "#resp-count", "4 surveys")
	})

	t.Run("settings", func(t *testing.T) {
		b.waitTrue(t, "settings loaded", `document.querySelector('#s-delay').value === '2'`)
		b.do(t, "save a delay out of range",
			chromedp.SetValue(chromedp.ID("s-delay"), "100"),
			chromedp.Click(chromedp.ID("settings-save")))
		b.waitText(t, "#s-delay-error", "must be an integer from 1 to 72")
		if got := eval[string](t, b, `document.querySelector('#s-delay').getAttribute('aria-invalid')`); got != "true" {
			t.Fatalf("the invalid field is not marked aria-invalid: %q", got)
		}
		b.do(t, "save valid settings",
			chromedp.SetValue(chromedp.ID("s-delay"), "4"),
			chromedp.SetValue(chromedp.ID("s-expiry"), "14"),
			chromedp.Click(chromedp.ID("settings-save")))
		b.waitText(t, "#settings-status", "Settings saved.")
		var cfg struct {
			Delay  int `json:"survey_delay_hours"`
			Expiry int `json:"survey_expiry_days"`
		}
		svc.Do(t, "GET", "/api/v1/csat/config", key, nil).JSON(t, &cfg)
		if cfg.Delay != 4 || cfg.Expiry != 14 {
			t.Fatalf("REST config after saving: %+v, want delay 4 and expiry 14", cfg)
		}
		// A reload signs in again from session storage and shows what was saved.
		b.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("dashboard")))
		b.waitTrue(t, "saved delay shown after reload", `document.querySelector('#s-delay').value === '4'`)
	})

	t.Run("phone-and-labels", func(t *testing.T) {
		b.do(t, "phone viewport", chromedp.EmulateViewport(390, 844))
		b.waitTrue(t, "no sideways scrolling on a phone", `document.documentElement.scrollWidth <= window.innerWidth`)
		unlabeled := eval[[]string](t, b, `[...document.querySelectorAll('input, select')].filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.id)`)
		if len(unlabeled) > 0 {
			t.Fatalf("form controls without a label: %v", unlabeled)
		}
	})

	t.Run("sign-out", func(t *testing.T) {
		b.do(t, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin")))
		if got := eval[*string](t, b, `sessionStorage.getItem('csat.apiKey')`); got != nil {
			t.Fatalf("the key stayed in session storage after signing out")
		}
	})

	// The only console errors allowed are the browser's notes on the
	// wrong key's 401 answer; a CSP violation or a script error fails.
	for _, e := range b.consoleErrors() {
		if !strings.Contains(e, "401") {
			t.Errorf("console error: %s", e)
		}
	}
}
