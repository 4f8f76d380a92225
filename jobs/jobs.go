// Package jobs runs the survey lifecycle's delayed work on asynq: the send
// at scheduled_for, the expiry at expires_at, and a periodic sweep that
// re-enqueues from Postgres whatever Redis lost.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/csat/csat/survey"
)

// Task types.
const (
	TypeSurveySend      = "survey:send"
	TypeSurveySendDue   = "survey:send-due"
	TypeSurveyExpire    = "survey:expire"
	TypeSurveyExpireDue = "survey:expire-due"
)

// Queues, by priority.
const (
	QueueCritical = "critical" // sends
	QueueDefault  = "default"  // expiries
	QueueLow      = "low"      // sweeps, webhooks
)

// Queues maps each queue to its asynq priority weight.
var Queues = map[string]int{QueueCritical: 6, QueueDefault: 3, QueueLow: 1}

// Payload names the survey a task is for; ids only, the handler reloads.
type Payload struct {
	TenantID string `json:"tenant_id"`
	SurveyID string `json:"survey_id"`
}

func newTask(typ string, p Payload, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return asynq.NewTask(typ, b, opts...), nil
}

// Client enqueues survey tasks; it implements survey.Scheduler.
type Client struct {
	Asynq *asynq.Client
	Now   func() time.Time // the clock; time.Now when nil

	// lastSend and lastExpiry hold the second of the last send-due and
	// expire-due task this process enqueued per tenant: the other surveys
	// of that second (an intake burst, a batch's emails) skip the Redis
	// round trip. A task Redis lost is no matter: the sweep re-enqueues the
	// pending surveys due soon and expires overdue ones itself.
	lastSend, lastExpiry sync.Map
}

// GroupLead is how far ahead a send must be due to join its tenant's task
// for that second (see ScheduleSend): that task cannot have started yet.
const GroupLead = 2 * time.Second

// ScheduleSend enqueues the send of a survey at a time. A survey due more
// than GroupLead ahead joins its tenant's send-due task for that second
// (TaskID per tenant and second), which emails every survey of the tenant
// due within that second: 10,000 surveys due at once are one task, not
// 10,000. A survey due sooner (or already) gets a task of its own, as that
// second's task may have run. Either way a second enqueue of a queued task
// is a no-op, and the sweep enqueues again whatever Redis lost.
func (c *Client) ScheduleSend(ctx context.Context, tenantID, surveyID string, at time.Time) error {
	if sec := at.Truncate(time.Second); sec.After(c.now().Add(GroupLead)) {
		return onceASecond(&c.lastSend, tenantID, sec, func() error {
			return c.enqueueSendDue(ctx, DuePayload{TenantID: tenantID, Before: sec.Add(time.Second), Lead: true},
				fmt.Sprintf("send-due:%s:%d", tenantID, sec.Unix()), asynq.ProcessAt(sec))
		})
	}
	t, err := newTask(TypeSurveySend, Payload{tenantID, surveyID},
		asynq.Queue(QueueCritical), asynq.MaxRetry(12), asynq.Timeout(time.Minute),
		asynq.TaskID("send:"+tenantID+":"+surveyID), asynq.ProcessAt(at))
	if err != nil {
		return err
	}
	return ignoreConflict(c.Asynq.EnqueueContext(ctx, t))
}

// DuePayload names the tenant and the time before which its due surveys
// are sent (TypeSurveySendDue). A lead task shares a large wave with
// helper tasks (see Handlers.SendDue).
type DuePayload struct {
	TenantID string    `json:"tenant_id"`
	Before   time.Time `json:"before"`
	Lead     bool      `json:"lead,omitempty"`
}

func (c *Client) enqueueSendDue(ctx context.Context, p DuePayload, id string, opts ...asynq.Option) error {
	opts = append([]asynq.Option{asynq.Queue(QueueCritical), asynq.MaxRetry(12), asynq.Timeout(time.Minute)}, opts...)
	return c.enqueueDue(ctx, TypeSurveySendDue, p, id, opts...)
}

// enqueueDue enqueues a task of a tenant's due surveys (send-due,
// expire-due), with the TaskID id unless it is empty.
func (c *Client) enqueueDue(ctx context.Context, typ string, p DuePayload, id string, opts ...asynq.Option) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode %s payload: %w", typ, err)
	}
	if id != "" {
		opts = append(opts, asynq.TaskID(id))
	}
	return ignoreConflict(c.Asynq.EnqueueContext(ctx, asynq.NewTask(typ, b, opts...)))
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ScheduleExpire enqueues the expiry of a sent survey at its expires_at.
// Like sends, expiries more than GroupLead ahead share their tenant's
// task for that second (it runs once the second is over and expires every
// sent survey of the tenant whose link expired): a wave's 10,000 expiries
// are a task or two per second of the wave, not 10,000 tasks waiting in
// Redis for days.
func (c *Client) ScheduleExpire(ctx context.Context, tenantID, surveyID string, at time.Time) error {
	if sec := at.Truncate(time.Second); sec.After(c.now().Add(GroupLead)) {
		return onceASecond(&c.lastExpiry, tenantID, sec, func() error {
			return c.enqueueDue(ctx, TypeSurveyExpireDue, DuePayload{TenantID: tenantID, Before: sec.Add(time.Second)},
				fmt.Sprintf("expire-due:%s:%d", tenantID, sec.Unix()),
				asynq.Queue(QueueDefault), asynq.MaxRetry(10), asynq.Timeout(time.Minute), asynq.ProcessAt(sec.Add(time.Second)))
		})
	}
	t, err := newTask(TypeSurveyExpire, Payload{tenantID, surveyID},
		asynq.Queue(QueueDefault), asynq.MaxRetry(10), asynq.Timeout(30*time.Second),
		asynq.TaskID(fmt.Sprintf("expire:%s:%s:%d", tenantID, surveyID, at.Unix())), asynq.ProcessAt(at))
	if err != nil {
		return err
	}
	return ignoreConflict(c.Asynq.EnqueueContext(ctx, t))
}

// onceASecond runs enqueue unless last says this process already enqueued
// the tenant's task of that second, and remembers the second once it did.
func onceASecond(last *sync.Map, tenantID string, sec time.Time, enqueue func() error) error {
	if v, ok := last.Load(tenantID); ok && v.(time.Time).Equal(sec) {
		return nil
	}
	if err := enqueue(); err != nil {
		return err
	}
	last.Store(tenantID, sec)
	return nil
}

func ignoreConflict(_ *asynq.TaskInfo, err error) error {
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return err
}

// Handlers process survey tasks.
type Handlers struct {
	Svc *survey.Service
	Log *slog.Logger
	// Jobs enqueues the helpers and continuations of send-due tasks.
	Jobs *Client
	// Fanout is how many tasks at most share one tenant's wave (the
	// worker concurrency); 0 or 1: the lead task sends it alone.
	Fanout int
	// Register adds other packages' task types to the mux (webhooks).
	Register []func(*asynq.ServeMux)
}

func decode(t *asynq.Task) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TenantID == "" || p.SurveyID == "" {
		return p, fmt.Errorf("bad %s payload: %w", t.Type(), errors.Join(err, asynq.SkipRetry))
	}
	return p, nil
}

// decodeDue reads a DuePayload with a tenant and, when needBefore, a time.
func decodeDue(t *asynq.Task, needBefore bool) (DuePayload, error) {
	var p DuePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TenantID == "" || needBefore && p.Before.IsZero() {
		return p, fmt.Errorf("bad %s payload: %w", t.Type(), errors.Join(err, asynq.SkipRetry))
	}
	return p, nil
}

// Send handles TypeSurveySend.
func (h *Handlers) Send(ctx context.Context, t *asynq.Task) error {
	p, err := decode(t)
	if err != nil {
		return err
	}
	outcome, err := h.Svc.Send(ctx, p.TenantID, p.SurveyID)
	if err != nil {
		return fmt.Errorf("send survey %s: %w", p.SurveyID, err)
	}
	h.Log.Debug("survey send task", "tenant_id", p.TenantID, "survey_id", p.SurveyID, "outcome", outcome)
	return nil
}

// SendDue handles TypeSurveySendDue: it emails the tenant's due surveys
// batch after batch. A lead task first counts them and enqueues a helper
// task per further batch, up to Fanout tasks in all, so a wave is sent by
// as many workers as are free; helpers (TaskID per wave and number) are
// enqueued once however often the lead runs. A task that ran out of time
// with surveys left enqueues its continuation.
func (h *Handlers) SendDue(ctx context.Context, t *asynq.Task) error {
	p, err := decodeDue(t, true)
	if err != nil {
		return err
	}
	if p.Lead && h.Fanout > 1 && h.Jobs != nil {
		n, err := h.Svc.CountDue(ctx, p.TenantID, p.Before, h.Fanout*survey.SendBatch)
		if err != nil {
			return fmt.Errorf("send due surveys: %w", err)
		}
		helper := DuePayload{TenantID: p.TenantID, Before: p.Before}
		for i := 1; i < min(h.Fanout, (n+survey.SendBatch-1)/survey.SendBatch); i++ {
			id := fmt.Sprintf("send-due:%s:%d:%d", p.TenantID, p.Before.Unix(), i)
			if err := h.Jobs.enqueueSendDue(ctx, helper, id); err != nil {
				h.Log.Warn("enqueue send helper failed; the lead sends alone", "tenant_id", p.TenantID, "err", err)
				break
			}
		}
	}
	sent, more, err := h.Svc.SendDue(ctx, p.TenantID, p.Before)
	if err != nil {
		return fmt.Errorf("send due surveys: %w", err)
	}
	h.Log.Debug("survey send-due task", "tenant_id", p.TenantID, "sent", sent, "more", more)
	if more && ctx.Err() != nil {
		// A worker shutting down: asynq puts the task back.
		return fmt.Errorf("send due surveys: %w", ctx.Err())
	}
	if more && h.Jobs != nil {
		if err := h.Jobs.enqueueSendDue(ctx, DuePayload{TenantID: p.TenantID, Before: p.Before, Lead: true}, ""); err != nil {
			return fmt.Errorf("continue due surveys: %w", err)
		}
	}
	return nil
}

// Expire handles TypeSurveyExpire.
func (h *Handlers) Expire(ctx context.Context, t *asynq.Task) error {
	p, err := decode(t)
	if err != nil {
		return err
	}
	if _, err := h.Svc.Expire(ctx, p.TenantID, p.SurveyID); err != nil {
		return fmt.Errorf("expire survey %s: %w", p.SurveyID, err)
	}
	return nil
}

// ExpireDue handles TypeSurveyExpireDue: the tenant's sent surveys whose
// links expired are marked expired.
func (h *Handlers) ExpireDue(ctx context.Context, t *asynq.Task) error {
	p, err := decodeDue(t, false)
	if err != nil {
		return err
	}
	if _, err := h.Svc.ExpireDue(ctx, p.TenantID); err != nil {
		return fmt.Errorf("expire due surveys: %w", err)
	}
	return nil
}

// Mux routes task types to handlers.
func (h *Handlers) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSurveySend, h.Send)
	mux.HandleFunc(TypeSurveySendDue, h.SendDue)
	mux.HandleFunc(TypeSurveyExpire, h.Expire)
	mux.HandleFunc(TypeSurveyExpireDue, h.ExpireDue)
	for _, reg := range h.Register {
		reg(mux)
	}
	return mux
}

// ServerConfig tunes the asynq server.
type ServerConfig struct {
	Concurrency     int
	ShutdownTimeout time.Duration
	Log             *slog.Logger
}

// NewServer builds the asynq server with the queue priorities. The delayed
// task check runs every 250 ms, so a send starts at most ~250 ms after it
// is due (asynq's default, 5 s, made a wave's p95 lateness seconds); it is
// one small script per queue per check. Idle workers look for new tasks
// every 125-375 ms (asynq's default: 0.5-1.5 s), so the helpers a wave's
// send-due task enqueues start at once; a dequeue script per queue each
// time.
func NewServer(redis asynq.RedisConnOpt, cfg ServerConfig) *asynq.Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 20
	}
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   Queues,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		DelayedTaskCheckInterval: 250 * time.Millisecond,
		TaskCheckInterval:        250 * time.Millisecond,
		Logger:                   asynqLogger{cfg.Log},
		LogLevel:                 asynq.WarnLevel,
		IsFailure: func(err error) bool {
			return !errors.Is(err, survey.ErrNotDue)
		},
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if errors.Is(err, survey.ErrNotDue) {
				return 2 * time.Second
			}
			return asynq.DefaultRetryDelayFunc(n, err, t)
		},
	})
}

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
