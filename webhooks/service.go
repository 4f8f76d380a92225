package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
)

// Service manages endpoints and delivers events. REST, GraphQL and the
// worker call it; it is also a survey.EventSink (the outbox).
type Service struct {
	DB       *bun.DB
	Queue    *asynq.Client
	Cfg      Config
	Log      *slog.Logger
	Metrics  *metrics.Metrics // may be nil
	HTTP     *http.Client     // deliveries; built from Cfg when nil
	Resolver *net.Resolver    // URL checks; net.DefaultResolver when nil
	Now      func() time.Time

	sealer *sealer

	mu      sync.Mutex
	pending map[string]pendingDeliveries // outbox rows to enqueue after commit, by event key
}

type pendingDeliveries struct {
	at   time.Time
	refs []taskPayload
}

// New builds the service; it fails only on a bad secret key.
func New(bdb *bun.DB, queue *asynq.Client, cfg Config, log *slog.Logger, m *metrics.Metrics) (*Service, error) {
	cfg = cfg.withDefaults()
	sl, err := newSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.SecretKey == "" {
		log.Warn("WEBHOOK_SECRET_KEY is unset: webhook signing secrets are sealed with a development key")
	}
	if cfg.AllowPrivate {
		log.Warn("WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach loopback and private addresses")
	}
	return &Service{
		DB: bdb, Queue: queue, Cfg: cfg, Log: log, Metrics: m,
		HTTP:   NewHTTPClient(cfg.AllowPrivate, cfg.Timeout),
		sealer: sl, pending: map[string]pendingDeliveries{},
	}, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// read and tx are the one place tenant data is reached, as in
// survey.Service: they bind the tenant for row-level security (db/rls.go).
func (s *Service) read(ctx context.Context, tenantID string, fn func(ctx context.Context, idb bun.IDB) error) error {
	if tenantID == "" {
		return errs.ErrNoTenant
	}
	return fn(db.WithTenant(ctx, tenantID), s.DB)
}

func (s *Service) tx(ctx context.Context, tenantID string, fn func(ctx context.Context, tx bun.Tx) error) error {
	if tenantID == "" {
		return errs.ErrNoTenant
	}
	return s.DB.RunInTx(db.WithTenant(ctx, tenantID), nil, fn)
}

var errEndpointNotFound = errs.New(errs.NotFound, "webhook endpoint not found")

func notFound(err error, nf error) error {
	if errors.Is(err, errs.ErrNotFound) {
		return nf
	}
	return err
}

// EndpointInput creates an endpoint.
type EndpointInput struct {
	URL         string
	EventTypes  []string // none: csat.*
	Description string
	Enabled     *bool // nil: true
}

// EndpointPatch changes an endpoint; nil fields stay.
type EndpointPatch struct {
	URL         *string
	EventTypes  *[]string
	Description *string
	Enabled     *bool
}

// WithSecret is an endpoint with its signing secret, returned only by
// Create and RotateSecret.
type WithSecret struct {
	Endpoint *db.WebhookEndpoint
	Secret   string
}

func checkDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if len(d) > MaxDescriptionLen {
		return "", errs.Validation(map[string]string{"description": fmt.Sprintf("at most %d characters", MaxDescriptionLen)})
	}
	return d, nil
}

// Create adds an endpoint for the context's tenant (webhooks:write). The
// URL is refused (errs.Invalid) when it is not http(s) or points to a
// private address.
func (s *Service) Create(ctx context.Context, in EndpointInput) (*WithSecret, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWebhooks)
	if err != nil {
		return nil, err
	}
	u, err := CheckURL(ctx, in.URL, s.Cfg.AllowPrivate, s.Resolver)
	if err != nil {
		return nil, err
	}
	types, err := NormalizePatterns(in.EventTypes)
	if err != nil {
		return nil, err
	}
	desc, err := checkDescription(in.Description)
	if err != nil {
		return nil, err
	}
	now := s.now()
	e := &db.WebhookEndpoint{
		TenantID: tenantID, ID: secret.ID("whe_"), URL: u, Description: desc, EventTypes: types,
		Enabled: in.Enabled == nil || *in.Enabled, CreatedAt: now, UpdatedAt: now,
	}
	plain := NewSecret()
	e.SecretSealed = s.sealer.seal(plain, tenantID, e.ID)
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx) error {
		// Lock the tenant row so two creates cannot both pass the limit.
		if _, err := tx.NewRaw("SELECT id FROM tenants WHERE id = ? FOR UPDATE", tenantID).Exec(ctx); err != nil {
			return err
		}
		n, err := db.CountWebhookEndpoints(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if n >= MaxEndpoints {
			return errs.New(errs.Conflict, "a tenant can have at most %d webhook endpoints", MaxEndpoints)
		}
		return db.InsertWebhookEndpoint(ctx, tx, e)
	})
	if err != nil {
		return nil, fmt.Errorf("create webhook endpoint: %w", err)
	}
	return &WithSecret{Endpoint: e, Secret: plain}, nil
}

// List returns the context tenant's endpoints (csat:read).
func (s *Service) List(ctx context.Context) ([]db.WebhookEndpoint, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return nil, err
	}
	var out []db.WebhookEndpoint
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		out, err = db.ListWebhookEndpoints(ctx, idb, tenantID, false)
		return err
	})
	return out, err
}

// Get returns one endpoint of the context's tenant (csat:read).
func (s *Service) Get(ctx context.Context, id string) (*db.WebhookEndpoint, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return nil, err
	}
	var e *db.WebhookEndpoint
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		e, err = db.GetWebhookEndpoint(ctx, idb, tenantID, id, false)
		return err
	})
	return e, notFound(err, errEndpointNotFound)
}

// Update changes an endpoint (webhooks:write). Enabling a disabled
// endpoint clears its failure record.
func (s *Service) Update(ctx context.Context, id string, p EndpointPatch) (*db.WebhookEndpoint, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWebhooks)
	if err != nil {
		return nil, err
	}
	var u string
	if p.URL != nil {
		if u, err = CheckURL(ctx, *p.URL, s.Cfg.AllowPrivate, s.Resolver); err != nil {
			return nil, err
		}
	}
	var types []string
	if p.EventTypes != nil {
		if len(*p.EventTypes) == 0 {
			return nil, errs.Validation(map[string]string{"event_types": "must list at least one event type"})
		}
		if types, err = NormalizePatterns(*p.EventTypes); err != nil {
			return nil, err
		}
	}
	var desc string
	if p.Description != nil {
		if desc, err = checkDescription(*p.Description); err != nil {
			return nil, err
		}
	}
	var out *db.WebhookEndpoint
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx) error {
		e, err := db.GetWebhookEndpoint(ctx, tx, tenantID, id, true)
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		cols := []string{}
		if p.URL != nil {
			e.URL, cols = u, append(cols, "url")
		}
		if p.EventTypes != nil {
			e.EventTypes, cols = types, append(cols, "event_types")
		}
		if p.Description != nil {
			e.Description, cols = desc, append(cols, "description")
		}
		if p.Enabled != nil {
			if *p.Enabled && !e.Enabled {
				e.FailingSince, e.DisabledAt, e.DisabledReason = nil, nil, nil
			}
			e.Enabled, cols = *p.Enabled, append(cols, "enabled", "failing_since", "disabled_at", "disabled_reason")
		}
		e.UpdatedAt = s.now()
		out = e
		return db.UpdateWebhookEndpoint(ctx, tx, e, cols...)
	})
	if err != nil {
		return nil, fmt.Errorf("update webhook endpoint: %w", err)
	}
	return out, nil
}

// Delete removes an endpoint and its deliveries (webhooks:write).
func (s *Service) Delete(ctx context.Context, id string) error {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWebhooks)
	if err != nil {
		return err
	}
	return s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx) error {
		ok, err := db.DeleteWebhookEndpoint(ctx, tx, tenantID, id)
		if err == nil && !ok {
			err = errEndpointNotFound
		}
		return err
	})
}

// RotateSecret replaces an endpoint's signing secret (webhooks:write).
// The old secret stops signing at once: deliveries from now on, retries
// included, carry the new one.
func (s *Service) RotateSecret(ctx context.Context, id string) (*WithSecret, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWebhooks)
	if err != nil {
		return nil, err
	}
	plain := NewSecret()
	var out *db.WebhookEndpoint
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx) error {
		e, err := db.GetWebhookEndpoint(ctx, tx, tenantID, id, true)
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		e.SecretSealed, e.UpdatedAt = s.sealer.seal(plain, tenantID, e.ID), s.now()
		out = e
		return db.UpdateWebhookEndpoint(ctx, tx, e, "secret_sealed")
	})
	if err != nil {
		return nil, fmt.Errorf("rotate webhook secret: %w", err)
	}
	return &WithSecret{Endpoint: out, Secret: plain}, nil
}

// MaxLimit is the largest page of deliveries.
const MaxLimit = 100

// DeliveryPage is one page of an endpoint's deliveries, newest first.
type DeliveryPage struct {
	Deliveries []db.WebhookDelivery
	Total      int
}

// Deliveries lists an endpoint's deliveries (csat:read).
func (s *Service) Deliveries(ctx context.Context, endpointID string, limit, offset int) (DeliveryPage, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeRead)
	if err != nil {
		return DeliveryPage{}, err
	}
	if limit < 1 || limit > MaxLimit {
		return DeliveryPage{}, errs.New(errs.Invalid, "limit must be from 1 to %d", MaxLimit)
	}
	if offset < 0 {
		return DeliveryPage{}, errs.New(errs.Invalid, "offset must not be negative")
	}
	var page DeliveryPage
	err = s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		if _, err := db.GetWebhookEndpoint(ctx, idb, tenantID, endpointID, false); err != nil {
			return notFound(err, errEndpointNotFound)
		}
		page.Deliveries, page.Total, err = db.ListWebhookDeliveries(ctx, idb, tenantID, endpointID, limit, offset)
		return err
	})
	return page, err
}

// Redeliver sends a delivery's event to its endpoint again, as a new
// delivery (webhooks:write). The endpoint must be enabled.
func (s *Service) Redeliver(ctx context.Context, endpointID, deliveryID string) (*db.WebhookDelivery, error) {
	tenantID, err := tenants.Require(ctx, tenants.ScopeWebhooks)
	if err != nil {
		return nil, err
	}
	var nd *db.WebhookDelivery
	err = s.tx(ctx, tenantID, func(ctx context.Context, tx bun.Tx) error {
		e, err := db.GetWebhookEndpoint(ctx, tx, tenantID, endpointID, false)
		if err != nil {
			return notFound(err, errEndpointNotFound)
		}
		d, err := db.GetWebhookDelivery(ctx, tx, tenantID, deliveryID)
		if err != nil || d.EndpointID != e.ID {
			return errs.New(errs.NotFound, "webhook delivery not found")
		}
		if !e.Enabled {
			return errs.New(errs.Conflict, "the endpoint is disabled; enable it before redelivering")
		}
		now := s.now()
		nd = &db.WebhookDelivery{
			TenantID: tenantID, ID: secret.ID("whd_"), EndpointID: e.ID, EventID: d.EventID, EventType: d.EventType,
			Status: db.DeliveryPending, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now,
		}
		return db.InsertWebhookDeliveries(ctx, tx, []db.WebhookDelivery{*nd})
	})
	if err != nil {
		return nil, fmt.Errorf("redeliver: %w", err)
	}
	s.enqueue(ctx, taskPayload{TenantID: tenantID, DeliveryID: nd.ID}, time.Time{})
	return nd, nil
}

// eventKey identifies an event between InTx and AfterCommit, which see
// the same survey.Event value.
func eventKey(ev survey.Event) string {
	subject := "config"
	if ev.Survey != nil {
		subject = ev.Survey.ID
	}
	return ev.TenantID + "|" + ev.Type + "|" + subject + "|" + strconv.FormatInt(ev.At.UnixNano(), 10)
}

// InTx writes the event and one delivery per subscribed, enabled endpoint
// in the transaction of the change: the outbox. Tenants without matching
// endpoints cost one indexed read, inside the change's first statement
// when it read them (db.WebhookTargets).
func (s *Service) InTx(ctx context.Context, tx bun.IDB, ev survey.Event) error {
	return s.InTxMany(ctx, tx, []survey.Event{ev})
}

// InTxMany is InTx for all the events of one transaction: the endpoints
// are looked up once (a batch of sends has one event per survey).
func (s *Service) InTxMany(ctx context.Context, tx bun.IDB, evs []survey.Event) error {
	var eps []db.WebhookEndpoint
	loadedFor := ""
	for _, ev := range evs {
		if !IsEventType(ev.Type) || ev.TenantID == "" {
			continue
		}
		if ev.TenantID != loadedFor {
			// The change's own statement may have read them already.
			var ok bool
			if eps, ok = db.WebhookTargetsFrom(ctx, ev.TenantID); !ok {
				var err error
				if eps, err = db.ListWebhookEndpoints(ctx, tx, ev.TenantID, true); err != nil {
					return err
				}
			}
			loadedFor = ev.TenantID
		}
		if err := s.recordEvent(ctx, tx, ev, eps); err != nil {
			return fmt.Errorf("record event %s: %w", ev.Type, err)
		}
	}
	return nil
}

// recordEvent writes one event and its deliveries to the endpoints subscribed.
func (s *Service) recordEvent(ctx context.Context, tx bun.IDB, ev survey.Event, eps []db.WebhookEndpoint) error {
	var err error
	var targets []db.WebhookEndpoint
	for _, e := range eps {
		if Subscribed(e.EventTypes, ev.Type) {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	now := s.now()
	we := &db.WebhookEvent{TenantID: ev.TenantID, ID: secret.ID("evt_"), Type: ev.Type, CreatedAt: ev.At}
	if we.Payload, err = payload(we.ID, ev); err != nil {
		return err
	}
	if err := db.InsertWebhookEvent(ctx, tx, we); err != nil {
		return err
	}
	ds := make([]db.WebhookDelivery, 0, len(targets))
	refs := make([]taskPayload, 0, len(targets))
	for _, e := range targets {
		d := db.WebhookDelivery{
			TenantID: ev.TenantID, ID: secret.ID("whd_"), EndpointID: e.ID, EventID: we.ID, EventType: ev.Type,
			Status: db.DeliveryPending, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now,
		}
		ds = append(ds, d)
		refs = append(refs, taskPayload{TenantID: ev.TenantID, DeliveryID: d.ID})
	}
	if err := db.InsertWebhookDeliveries(ctx, tx, ds); err != nil {
		return err
	}
	s.remember(eventKey(ev), refs, now)
	return nil
}

// AfterCommit enqueues the deliveries InTx wrote. If Redis is down or
// loses them, the sweep enqueues them from Postgres.
func (s *Service) AfterCommit(ctx context.Context, ev survey.Event) {
	if !IsEventType(ev.Type) {
		return
	}
	s.mu.Lock()
	p, ok := s.pending[eventKey(ev)]
	delete(s.pending, eventKey(ev))
	s.mu.Unlock()
	if !ok {
		return
	}
	for _, ref := range p.refs {
		s.enqueue(ctx, ref, time.Time{})
	}
}

// remember keeps refs until AfterCommit; entries of transactions that
// rolled back are dropped after a minute.
func (s *Service) remember(key string, refs []taskPayload, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 256 {
		for k, p := range s.pending {
			if now.Sub(p.at) > time.Minute {
				delete(s.pending, k)
			}
		}
	}
	s.pending[key] = pendingDeliveries{at: now, refs: refs}
}
