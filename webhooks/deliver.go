package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/jobs"
)

// TypeDeliver is the asynq task type of one delivery attempt.
const TypeDeliver = "webhook:deliver"

// UserAgent identifies deliveries.
const UserAgent = "csat-webhooks/1.0"

// lease is how long a claimed attempt keeps the sweep away; past it, a
// delivery whose worker died is picked up again.
const lease = time.Minute

// taskPayload names one attempt of a delivery; ids only.
type taskPayload struct {
	TenantID   string `json:"tenant_id"`
	DeliveryID string `json:"delivery_id"`
	Attempt    int    `json:"attempt"`
}

// enqueue queues an attempt on the low queue at `at` (zero: now). The
// TaskID makes the sweep's re-enqueue of a queued attempt a no-op.
func (s *Service) enqueue(ctx context.Context, p taskPayload, at time.Time) {
	if s.Queue == nil {
		return
	}
	b, _ := json.Marshal(p)
	opts := []asynq.Option{
		asynq.Queue(jobs.QueueLow), asynq.MaxRetry(0), asynq.Timeout(s.Cfg.Timeout + 20*time.Second),
		asynq.TaskID(fmt.Sprintf("webhook:%s:%s:%d", p.TenantID, p.DeliveryID, p.Attempt)),
	}
	if !at.IsZero() {
		opts = append(opts, asynq.ProcessAt(at))
	}
	_, err := s.Queue.EnqueueContext(ctx, asynq.NewTask(TypeDeliver, b, opts...))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
		s.Log.Warn("enqueue webhook delivery failed; the sweep will retry", "tenant_id", p.TenantID, "delivery_id", p.DeliveryID, "err", err)
	}
}

// Register adds the delivery task to the worker's mux (jobs.Handlers.Register).
func (s *Service) Register(mux *asynq.ServeMux) { mux.HandleFunc(TypeDeliver, s.handle) }

// handle runs one attempt. It never returns an error: Postgres holds the
// state and the sweep re-enqueues whatever is due, so an asynq retry (or
// an archived task holding the TaskID) would only get in the way.
func (s *Service) handle(ctx context.Context, t *asynq.Task) error {
	var p taskPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TenantID == "" || p.DeliveryID == "" {
		s.Log.Error("bad webhook task payload", "err", err)
		return nil
	}
	if err := s.Deliver(ctx, p.TenantID, p.DeliveryID, p.Attempt); err != nil {
		s.Log.Warn("webhook delivery attempt not recorded; the sweep will retry", "tenant_id", p.TenantID, "delivery_id", p.DeliveryID, "err", err)
	}
	return nil
}

// Result is the outcome of one HTTP attempt.
type Result struct {
	Code int    // HTTP status, 0 when none
	Err  string // transport error, "" when a response came
}

// OK reports a 2xx.
func (r Result) OK() bool { return r.Err == "" && r.Code >= 200 && r.Code < 300 }

// Deliver makes attempt number `attempt` of a delivery if it is still
// pending at that attempt and due, records the outcome and schedules the
// next attempt, marks it failed once the retry window is over, or disables
// an endpoint that has failed for DisableAfter.
func (s *Service) Deliver(ctx context.Context, tenantID, deliveryID string, attempt int) error {
	now := s.now()
	var d *db.WebhookDelivery
	var e *db.WebhookEndpoint
	var ev *db.WebhookEvent
	err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
		// Due with a little slack: asynq's clock and ours may differ slightly.
		if d, err = db.ClaimWebhookDelivery(ctx, idb, tenantID, deliveryID, attempt, now.Add(2*time.Second), now.Add(lease)); err != nil || d == nil {
			return err
		}
		if e, err = db.GetWebhookEndpoint(ctx, idb, tenantID, d.EndpointID, false); err != nil {
			return err
		}
		ev, err = db.GetWebhookEvent(ctx, idb, tenantID, d.EventID)
		return err
	})
	if err != nil || d == nil {
		return err
	}
	if !e.Enabled {
		return s.finish(ctx, d, db.DeliveryFailed, Result{Err: "endpoint disabled"}, now)
	}
	secretKey, err := s.sealer.open(e.SecretSealed, tenantID, e.ID)
	if err != nil {
		return err
	}
	res := s.post(ctx, e.URL, secretKey, d, ev)
	return s.record(ctx, d, res)
}

// post sends the event once and reads at most MaxResponseBody of the answer.
func (s *Service) post(ctx context.Context, url, secretKey string, d *db.WebhookDelivery, ev *db.WebhookEvent) Result {
	ctx, cancel := context.WithTimeout(ctx, s.Cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.Payload))
	if err != nil {
		return Result{Err: "bad request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(SignatureHeader, Sign(secretKey, s.now(), ev.Payload))
	req.Header.Set("CSAT-Event-ID", ev.ID)
	req.Header.Set("CSAT-Event-Type", ev.Type)
	req.Header.Set("CSAT-Delivery-ID", d.ID)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return Result{Err: transportError(err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
	return Result{Code: resp.StatusCode}
}

// transportError says why no response came, without the URL (it may carry
// a token of the receiver's).
func transportError(err error) string {
	switch {
	case errors.Is(err, errBlocked):
		return "address not allowed"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		err = ue.Unwrap()
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// Backoff is the delay before retry n (1-based): RetryBase doubling up to
// a cap, with jitter of ±50% so receivers coming back are not stampeded.
func (s *Service) Backoff(n int) time.Duration {
	ceiling := min(4*time.Hour, s.Cfg.RetryWindow/4)
	d := s.Cfg.RetryBase
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, max(ceiling, s.Cfg.RetryBase))
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// record stores an attempt's outcome and what comes next.
func (s *Service) record(ctx context.Context, d *db.WebhookDelivery, res Result) error {
	now := s.now()
	if res.OK() {
		s.count("success")
		return s.finish(ctx, d, db.DeliverySucceeded, res, now)
	}
	s.count("failure")
	next := now.Add(s.Backoff(d.Attempts + 1))
	status := db.DeliveryPending
	if next.After(d.CreatedAt.Add(s.Cfg.RetryWindow)) {
		status = db.DeliveryFailed
		s.count("failed_final")
	}
	d.NextAttemptAt = &next
	if err := s.finish(ctx, d, status, res, now); err != nil {
		return err
	}
	if d.Status == db.DeliveryPending {
		s.enqueue(ctx, taskPayload{TenantID: d.TenantID, DeliveryID: d.ID, Attempt: d.Attempts}, next)
	}
	return nil
}

// finish writes the delivery and the endpoint's failure record in one
// transaction; an endpoint failing for DisableAfter is disabled there.
func (s *Service) finish(ctx context.Context, d *db.WebhookDelivery, status string, res Result, now time.Time) error {
	d.Status, d.LastAttemptAt = status, &now
	d.LastResponseCode, d.LastError = nil, nil
	if res.Code != 0 {
		d.LastResponseCode = &res.Code
	}
	if res.Err != "" {
		d.LastError = &res.Err
	}
	if res.Err != "endpoint disabled" {
		d.Attempts++
	}
	switch status {
	case db.DeliverySucceeded:
		d.DeliveredAt, d.NextAttemptAt = &now, nil
	case db.DeliveryFailed:
		d.NextAttemptAt = nil
	}
	var disabled bool
	err := s.tx(ctx, d.TenantID, func(ctx context.Context, tx bun.Tx) error {
		d.UpdatedAt = now
		if err := db.UpdateWebhookDelivery(ctx, tx, d, "status", "attempts", "last_response_code", "last_error",
			"last_attempt_at", "next_attempt_at", "delivered_at"); err != nil {
			return err
		}
		if res.Err == "endpoint disabled" {
			return nil
		}
		var err error
		disabled, err = s.trackHealth(ctx, tx, d, res.OK(), now)
		return err
	})
	if err != nil {
		return err
	}
	if disabled {
		s.Log.Warn("csat.webhook.disabled", "tenant_id", d.TenantID, "endpoint_id", d.EndpointID,
			"failing_for", s.Cfg.DisableAfter.String(), "last_response_code", res.Code, "last_error", res.Err)
		if s.Metrics != nil {
			s.Metrics.WebhooksDisabled.Inc()
		}
	}
	return nil
}

// trackHealth keeps the endpoint's failing_since and disables it once it
// has failed for DisableAfter without a success in between.
func (s *Service) trackHealth(ctx context.Context, tx bun.Tx, d *db.WebhookDelivery, ok bool, now time.Time) (bool, error) {
	e, err := db.GetWebhookEndpoint(ctx, tx, d.TenantID, d.EndpointID, true)
	if err != nil {
		return false, nil // deleted meanwhile
	}
	switch {
	case ok && e.FailingSince == nil:
		return false, nil
	case ok:
		e.FailingSince, e.UpdatedAt = nil, now
		return false, db.UpdateWebhookEndpoint(ctx, tx, e, "failing_since")
	case e.FailingSince == nil:
		e.FailingSince, e.UpdatedAt = &now, now
		return false, db.UpdateWebhookEndpoint(ctx, tx, e, "failing_since")
	case !e.Enabled || now.Sub(*e.FailingSince) < s.Cfg.DisableAfter:
		return false, nil
	}
	reason := "failing since " + e.FailingSince.UTC().Format(time.RFC3339)
	if d.LastResponseCode != nil {
		reason += " (last response " + strconv.Itoa(*d.LastResponseCode) + ")"
	}
	e.Enabled, e.DisabledAt, e.DisabledReason, e.UpdatedAt = false, &now, &reason, now
	if err := db.UpdateWebhookEndpoint(ctx, tx, e, "enabled", "disabled_at", "disabled_reason"); err != nil {
		return false, err
	}
	d.Status, d.NextAttemptAt = db.DeliveryFailed, nil
	if err := db.UpdateWebhookDelivery(ctx, tx, d, "status", "next_attempt_at"); err != nil {
		return false, err
	}
	return true, db.FailPendingWebhookDeliveries(ctx, tx, d.TenantID, d.EndpointID, "endpoint disabled", now)
}

func (s *Service) count(result string) {
	if s.Metrics != nil {
		s.Metrics.WebhookDeliveries.WithLabelValues(result).Inc()
	}
}

// Sweep enqueues every pending delivery due before now+horizon, tenant by
// tenant, so deliveries Redis lost (or never got) go out. Enqueueing is
// idempotent per attempt.
func (s *Service) Sweep(ctx context.Context, horizon time.Duration) (int, error) {
	ids, err := db.ListTenantIDs(ctx, s.DB)
	if err != nil {
		return 0, err
	}
	n := 0
	before := s.now().Add(horizon)
	for _, tenantID := range ids {
		var due []db.DueWebhookDelivery
		err := s.read(ctx, tenantID, func(ctx context.Context, idb bun.IDB) (err error) {
			due, err = db.DueWebhookDeliveries(ctx, idb, tenantID, before, 10000)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("webhook sweep tenant %s: %w", tenantID, err)
		}
		for _, d := range due {
			s.enqueue(ctx, taskPayload{TenantID: tenantID, DeliveryID: d.ID, Attempt: d.Attempts}, d.NextAttemptAt)
			n++
		}
	}
	return n, nil
}

// RunSweep sweeps at start and every interval until ctx ends. Several
// workers may each run one: enqueueing is idempotent and attempts are
// claimed in Postgres.
func (s *Service) RunSweep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx, interval+5*time.Second); err != nil && ctx.Err() == nil {
			s.Log.Error("webhook sweep failed", "err", err)
		} else if n > 0 {
			s.Log.Debug("webhook sweep", "enqueued", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
