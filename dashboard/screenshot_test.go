package dashboard_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

var screenshots = flag.String("screenshots", "", "save dashboard screenshots into this directory (make screenshots)")

// TestScreenshot saves docs/dashboard.png and docs/dashboard-phone.png of
// two months of made-up surveys. Only with -screenshots=DIR:
//
//	go test ./dashboard -run TestScreenshot -args -screenshots=../docs
//
// Surveys go through intake, sending and rating as usual; then, as a
// fixture, their timestamps are moved back over the last 60 days so the
// trend has a shape (everything would be "today" otherwise).
func TestScreenshot(t *testing.T) {
	if *screenshots == "" {
		t.Skip("no -screenshots directory given")
	}
	b := newBrowser(t, 1280, 900)
	svc := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := svc.NewTenant(t, "Acme Support")
	fillMonth(t, svc, tenantID)

	b.do(t, "sign in",
		chromedp.Navigate(svc.URL+"/dashboard/"),
		chromedp.SendKeys(chromedp.ID("apikey"), key),
		chromedp.Click(chromedp.CSS("#signin-form button")),
		chromedp.WaitVisible(chromedp.ID("dashboard")))
	b.waitText(t, "#live", "Live")
	b.waitTrue(t, "a month of trend", `document.querySelectorAll('#trend-table tbody tr').length === 30`)
	b.waitTrue(t, "responses listed", `document.querySelectorAll('#responses .response').length === 10`)

	shot := func(name string, width, height int64) {
		b.do(t, "resize", chromedp.EmulateViewport(width, height),
			chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`))
		// Chart.js resizes its canvases after a resize observer fires.
		b.waitTrue(t, "charts resized", `[...document.querySelectorAll('canvas')].every(c =>
			Math.abs(c.getBoundingClientRect().width - c.parentElement.clientWidth) < 2)`)
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		out := filepath.Join(*screenshots, name)
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KiB)", out, len(png)/1024)
	}
	if err := os.MkdirAll(*screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot("dashboard.png", 1280, 900)
	shot("dashboard-phone.png", 390, 844)
}

var (
	people = []string{"Jane Cooper", "Wade Warren", "Esther Howard", "Cameron Williamson", "Brooklyn Simmons",
		"Leslie Alexander", "Jenny Wilson", "Guy Hawkins", "Robert Fox", "Jacob Jones", "Kristin Watson", "Cody Fisher"}
	agents   = []struct{ id, team string }{{"alice", "support"}, {"bob", "support"}, {"carol", "billing"}, {"dave", "onboarding"}}
	channels = []string{"email", "chat", "email", "phone"}
	feedback = map[int][]string{
		5: {"Quick and friendly, thanks!", "Solved in five minutes. Great support.", "Exactly what I needed."},
		4: {"Good help, took a little while.", "Fixed, thank you."},
		3: {"OK in the end, but I had to explain twice."},
		2: {"Took two days to get an answer."},
		1: {"Still not fixed."},
	}
)

// fillMonth reports 360 conversations, lets the service send their
// surveys, answers most of them, then spreads them over the last 60 days.
func fillMonth(t *testing.T, svc *testenv.Service, tenantID string) {
	t.Helper()
	ctx := tenants.NewContext(context.Background(), tenants.Principal{TenantID: tenantID, Scopes: []string{tenants.ScopeWrite, tenants.ScopeRead}})
	rng := rand.New(rand.NewPCG(7, 42))
	resolved := time.Now().Add(-3 * time.Hour)
	const n = 360
	ids := make([]string, n)
	for i := range n {
		a := agents[rng.IntN(len(agents))]
		name := people[i%len(people)]
		res, err := svc.App.Svc.Intake(ctx, survey.IntakeInput{
			ConversationID: fmt.Sprintf("conv_%04d", i), ContactName: name,
			ContactEmail: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + fmt.Sprintf("+%d@example.com", i),
			ResolvedAt:   &resolved, AgentID: a.id, TeamID: a.team, Channel: channels[rng.IntN(len(channels))],
		})
		if err != nil {
			t.Fatalf("intake: %v", err)
		}
		ids[i] = res.Survey.ID
	}
	testenv.Eventually(t, 60*time.Second, "all survey emails", func() bool { return len(svc.SMTP.Messages()) >= n })

	for _, m := range svc.SMTP.Messages() {
		// The survey's number is in the address; the recent month (the
		// first half) answers a little more often, and a little happier.
		var i int
		if _, err := fmt.Sscanf(m.To[0][strings.IndexByte(m.To[0], '+')+1:], "%d@", &i); err != nil {
			t.Fatalf("address %s: %v", m.To[0], err)
		}
		// Seeded by the number, so the emails' order does not matter.
		rng := rand.New(rand.NewPCG(7, uint64(i)))
		recent := i < n/2
		if rng.Float64() < map[bool]float64{true: 0.25, false: 0.35}[recent] {
			continue // unanswered
		}
		pool := map[bool][]int{true: {5, 5, 5, 5, 4, 4, 4, 3, 2, 1}, false: {5, 5, 5, 4, 4, 4, 3, 3, 2, 1}}[recent]
		r := pool[rng.IntN(len(pool))]
		var link string
		for _, l := range m.Links() {
			if strings.Contains(l, fmt.Sprintf("rating=%d", r)) {
				link = l
			}
		}
		token := link[strings.Index(link, "token=")+len("token="):]
		token = token[:strings.IndexByte(token, '&')]
		var err error
		if rng.Float64() < 0.55 {
			fb := feedback[r][rng.IntN(len(feedback[r]))]
			_, err = svc.App.Svc.Submit(context.Background(), token, r, &fb)
		} else {
			_, err = svc.App.Svc.Rate(context.Background(), token, r)
		}
		if err != nil {
			t.Fatalf("rate: %v", err)
		}
	}
	// The fixture: survey i is sent i×4 h ago (two months for 360, so the
	// previous period has numbers too), and answered some hours later. The analytics rollup follows through its
	// trigger.
	for i, id := range ids {
		back := time.Duration(i)*4*time.Hour + time.Duration(rng.IntN(120))*time.Minute
		_, err := svc.Admin.ExecContext(context.Background(), `UPDATE surveys SET
			resolved_at = resolved_at - ?::interval, scheduled_for = scheduled_for - ?::interval,
			created_at = created_at - ?::interval, sent_at = sent_at - ?::interval,
			expires_at = expires_at - ?::interval,
			responded_at = CASE WHEN responded_at IS NULL THEN NULL
				ELSE least(now(), sent_at - ?::interval + ?::interval) END
			WHERE tenant_id = ? AND id = ?`,
			pg(back), pg(back), pg(back), pg(back), pg(back), pg(back), pg(time.Duration(20+rng.IntN(600))*time.Minute), tenantID, id)
		if err != nil {
			t.Fatalf("spread surveys over the month: %v", err)
		}
	}
}

// pg is a duration as a Postgres interval literal.
func pg(d time.Duration) string { return fmt.Sprintf("%d seconds", int64(d.Seconds())) }
