package webhooks_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
	"github.com/csat/csat/webhooks"
)

// syncBuffer is a log sink safe to read while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var pm dto.Metric
	if err := c.Write(&pm); err != nil {
		t.Fatal(err)
	}
	return pm.GetCounter().GetValue()
}

// The default schedule on a fake clock, without asynq: a delivery failing
// past its 24 h window is marked failed; an endpoint failing for 3 days is
// disabled with a csat.webhook.disabled log line and metric, and its
// pending deliveries fail with it.
func TestRetryWindowAndDisableOnFakeClock(t *testing.T) {
	_, bdb := testenv.DB(t)
	ctx := context.Background()
	tn, err := (&tenants.Store{DB: bdb}).CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, func(int) int { return http.StatusBadGateway })
	logs := &syncBuffer{}
	m := metrics.New()
	svc, err := webhooks.New(bdb, nil, webhooks.Config{AllowPrivate: true}, slog.New(slog.NewJSONHandler(logs, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { return now }
	actx := tenants.NewContext(ctx, tenants.Principal{TenantID: tn.ID, Scopes: allScopes})
	ep, err := svc.Create(actx, webhooks.EndpointInput{URL: rc.URL})
	if err != nil {
		t.Fatal(err)
	}
	// emit records an event as survey.Service would, inside a transaction.
	emit := func(delay int) string {
		t.Helper()
		ev := survey.Event{Type: survey.EventConfigUpdated, TenantID: tn.ID, At: now,
			Config: &db.Config{TenantID: tn.ID, Enabled: true, SurveyDelayHours: delay, SurveyExpiryDays: 7, UpdatedAt: now}}
		err := bdb.RunInTx(db.WithTenant(ctx, tn.ID), nil, func(ctx context.Context, tx bun.Tx) error { return svc.InTx(ctx, tx, ev) })
		if err != nil {
			t.Fatal(err)
		}
		page, err := svc.Deliveries(actx, ep.Endpoint.ID, 1, 0)
		if err != nil || len(page.Deliveries) != 1 {
			t.Fatalf("deliveries: %v %v", page, err)
		}
		return page.Deliveries[0].ID
	}
	delivery := func(id string) db.WebhookDelivery {
		t.Helper()
		page, err := svc.Deliveries(actx, ep.Endpoint.ID, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Deliveries {
			if d.ID == id {
				return d
			}
		}
		t.Fatalf("delivery %s missing", id)
		return db.WebhookDelivery{}
	}

	first := emit(3)
	if err := svc.Deliver(ctx, tn.ID, first, 0); err != nil {
		t.Fatal(err)
	}
	d := delivery(first)
	if d.Status != db.DeliveryPending || d.Attempts != 1 || *d.LastResponseCode != 502 || !d.NextAttemptAt.After(now) {
		t.Fatalf("after one failure: %+v", d)
	}
	// A stale task (wrong attempt number) or an early one does nothing.
	if err := svc.Deliver(ctx, tn.ID, first, 0); err != nil || delivery(first).Attempts != 1 {
		t.Fatalf("stale attempt ran: %v", err)
	}
	now = now.Add(25 * time.Hour)
	if err := svc.Deliver(ctx, tn.ID, first, 1); err != nil {
		t.Fatal(err)
	}
	if d := delivery(first); d.Status != db.DeliveryFailed || d.Attempts != 2 || d.NextAttemptAt != nil {
		t.Fatalf("past the retry window: %+v", d)
	}
	if e, _ := svc.Get(actx, ep.Endpoint.ID); !e.Enabled || e.FailingSince == nil {
		t.Fatalf("25 h of failures must not disable yet: %+v", e)
	}

	second, third := emit(4), emit(5)
	now = now.Add(48 * time.Hour) // 73 h since the first failure
	if err := svc.Deliver(ctx, tn.ID, second, 0); err != nil {
		t.Fatal(err)
	}
	e, _ := svc.Get(actx, ep.Endpoint.ID)
	if e.Enabled || e.DisabledAt == nil || e.DisabledReason == nil {
		t.Fatalf("endpoint after 3 days of failures: %+v", e)
	}
	if d := delivery(second); d.Status != db.DeliveryFailed {
		t.Errorf("the disabling delivery: %+v", d)
	}
	if d := delivery(third); d.Status != db.DeliveryFailed || d.LastError == nil || *d.LastError != "endpoint disabled" {
		t.Errorf("a pending delivery of the disabled endpoint: %+v", d)
	}
	if !strings.Contains(logs.String(), `"msg":"csat.webhook.disabled"`) || !strings.Contains(logs.String(), ep.Endpoint.ID) {
		t.Errorf("no csat.webhook.disabled log line:\n%s", logs.String())
	}
	if n := counterValue(t, m.WebhooksDisabled); n != 1 {
		t.Errorf("csat_webhook_endpoints_disabled_total = %v", n)
	}
	if n := counterValue(t, m.WebhookDeliveries.WithLabelValues("failure")); n != 3 {
		t.Errorf("failures counted %v, want 3", n)
	}
	// The first delivery ran out its window; so did the second, created
	// 48 h before its first attempt.
	if n := counterValue(t, m.WebhookDeliveries.WithLabelValues("failed_final")); n != 2 {
		t.Errorf("failed_final counted %v, want 2", n)
	}
	if got := len(rc.all()); got != 3 {
		t.Errorf("receiver got %d requests, want 3", got)
	}
	// Redelivering to a disabled endpoint is refused until it is enabled.
	if _, err := svc.Redeliver(actx, ep.Endpoint.ID, first); err == nil {
		t.Error("redeliver to a disabled endpoint accepted")
	}
}

// BenchmarkOutbox measures what webhooks add to a change's transaction:
// the endpoint lookup and the event and delivery inserts (one endpoint),
// against the same transaction (a config update) with no endpoint
// subscribed.
func BenchmarkOutbox(b *testing.B) {
	_, bdb := testenv.DB(b)
	ctx := context.Background()
	tn, err := (&tenants.Store{DB: bdb}).CreateTenant(ctx, "Bench")
	if err != nil {
		b.Fatal(err)
	}
	svc, err := webhooks.New(bdb, nil, webhooks.Config{AllowPrivate: true}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ev := survey.Event{Type: survey.EventConfigUpdated, TenantID: tn.ID, At: time.Now(),
				Config: &db.Config{TenantID: tn.ID, Enabled: true, SurveyDelayHours: 2, SurveyExpiryDays: 7, UpdatedAt: time.Now()}}
			err := bdb.RunInTx(db.WithTenant(ctx, tn.ID), nil, func(ctx context.Context, tx bun.Tx) error {
				if err := db.UpdateConfig(ctx, tx, ev.Config); err != nil {
					return err
				}
				return svc.InTx(ctx, tx, ev)
			})
			if err != nil {
				b.Fatal(err)
			}
			svc.AfterCommit(ctx, ev)
		}
	}
	b.Run("no-endpoint", run)
	actx := tenants.NewContext(ctx, tenants.Principal{TenantID: tn.ID, Scopes: allScopes})
	if _, err := svc.Create(actx, webhooks.EndpointInput{URL: "http://127.0.0.1:9/bench"}); err != nil {
		b.Fatal(err)
	}
	b.Run("one-endpoint", run)
}
