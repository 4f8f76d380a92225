package webhooks_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/secret"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
	"github.com/csat/csat/webhooks"
)

// statements records the statements sent through a pool.
type statements struct {
	mu sync.Mutex
	qs []string
}

func (s *statements) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

// AfterQuery keeps every round trip: the BEGIN travels with the statement
// after it (db.bindingConn), so it is not one.
func (s *statements) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if e.Query == "BEGIN" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.qs = append(s.qs, e.Query)
}

func (s *statements) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := s.qs
	s.qs = nil
	return qs
}

type noJobs struct{}

func (noJobs) ScheduleSend(context.Context, string, string, time.Time) error   { return nil }
func (noJobs) ScheduleExpire(context.Context, string, string, time.Time) error { return nil }

// TestOutboxTargetsComeWithTheChange: a write reads the tenant's webhook
// endpoints in its first statement, not in a lookup of its own, and the
// outbox still records every subscribed event in the same transaction;
// a tenant without endpoints records none.
func TestOutboxTargetsComeWithTheChange(t *testing.T) {
	dsn, bdb := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	hooks, err := webhooks.New(bdb, nil, webhooks.Config{AllowPrivate: true}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := &statements{}
	svc := &survey.Service{DB: bdb.WithQueryHook(sent), Jobs: noJobs{}, Events: []survey.EventSink{hooks}}
	store := &tenants.Store{DB: admin}

	cases := []struct {
		name     string
		types    []string // the endpoint's event types; nil: no endpoint
		disabled bool
		events   map[string]int
	}{
		{name: "no-endpoint", events: map[string]int{}},
		{name: "completed-only", types: []string{survey.EventCompleted},
			events: map[string]int{survey.EventCompleted: 2}},
		{name: "everything", types: []string{"csat.*"},
			events: map[string]int{survey.EventScheduled: 1, survey.EventCompleted: 2}},
		{name: "disabled", types: []string{"csat.*"}, disabled: true, events: map[string]int{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ten, err := store.CreateTenant(ctx, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			tctx := tenants.NewContext(ctx, tenants.Principal{TenantID: ten.ID,
				Scopes: []string{tenants.ScopeRead, tenants.ScopeWrite, tenants.ScopeWebhooks}})
			if tc.types != nil {
				ep, err := hooks.Create(tctx, webhooks.EndpointInput{URL: "http://127.0.0.1:9/hook", EventTypes: tc.types, Enabled: ptr(!tc.disabled)})
				if err != nil {
					t.Fatal(err)
				}
				if tc.disabled != !ep.Endpoint.Enabled {
					t.Fatalf("endpoint enabled = %v", ep.Endpoint.Enabled)
				}
			}
			// Each write: its statements (as Bun runs them; a deferred write
			// and the COMMIT after it are one round trip), and which one
			// read the endpoints.
			check := func(op string, want int) {
				t.Helper()
				var qs []string
				for _, q := range sent.take() {
					if !strings.HasPrefix(q, `INSERT INTO "webhook_`) { // the outbox's rows: checked below
						qs = append(qs, q)
					}
				}
				if len(qs) != want {
					t.Errorf("%s: %d statements, want %d:\n%s", op, len(qs), want, strings.Join(qs, "\n"))
				}
				for i, q := range qs {
					// A prepared statement that reads them is named *_targets.
					reads := strings.Contains(q, "webhook_endpoints") || strings.Contains(q, "_targets(")
					if reads != (i == 0) {
						t.Errorf("%s: statement %d reads webhook_endpoints: %v\n%s", op, i, reads, q)
					}
				}
			}
			resolved := time.Now().Add(-time.Hour)
			res, err := svc.Intake(tctx, survey.IntakeInput{ConversationID: "c1", ContactEmail: "a@example.com", ResolvedAt: &resolved})
			if err != nil || !res.Created {
				t.Fatalf("intake: %+v %v", res, err)
			}
			check("intake", 3) // state; insert with the commit
			token := survey.NewToken(ten.ID)
			if _, err := admin.NewRaw(`UPDATE surveys SET status = 'sent', sent_at = now(), token_hash = ?, expires_at = now() + interval '7 days'
				WHERE id = ?`, secret.Hash(token), res.Survey.ID).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Rate(ctx, token, 4); err != nil {
				t.Fatal(err)
			}
			check("rate", 3) // lock; update with the commit
			fb := "Quick"
			if _, err := svc.Submit(ctx, token, 5, &fb); err != nil {
				t.Fatal(err)
			}
			check("submit", 3) // lock; update with the commit

			var rows []struct {
				Type       string `bun:"type"`
				Deliveries int    `bun:"deliveries"`
			}
			if err := admin.NewRaw(`SELECT e.type, (SELECT count(*) FROM webhook_deliveries d WHERE d.event_id = e.id) AS deliveries
				FROM webhook_events e WHERE e.tenant_id = ?`, ten.ID).Scan(ctx, &rows); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, r := range rows {
				got[r.Type]++
				if r.Deliveries != 1 {
					t.Errorf("event %s has %d deliveries, want 1", r.Type, r.Deliveries)
				}
			}
			if len(got) != len(tc.events) {
				t.Errorf("events %v, want %v", got, tc.events)
			}
			for typ, n := range tc.events {
				if got[typ] != n {
					t.Errorf("events %v, want %v", got, tc.events)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
