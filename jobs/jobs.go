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
	"time"

	"github.com/hibiken/asynq"

	"github.com/csat/csat/survey"
)

// Task types.
const (
	TypeSurveySend   = "survey:send"
	TypeSurveyExpire = "survey:expire"
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
}

// ScheduleSend enqueues the send of a survey at a time. The TaskID makes a
// second enqueue of a queued task a no-op.
func (c *Client) ScheduleSend(ctx context.Context, tenantID, surveyID string, at time.Time) error {
	t, err := newTask(TypeSurveySend, Payload{tenantID, surveyID},
		asynq.Queue(QueueCritical), asynq.MaxRetry(12), asynq.Timeout(time.Minute),
		asynq.TaskID("send:"+tenantID+":"+surveyID), asynq.ProcessAt(at))
	if err != nil {
		return err
	}
	return ignoreConflict(c.Asynq.EnqueueContext(ctx, t))
}

// ScheduleExpire enqueues the expiry of a sent survey at its expires_at.
func (c *Client) ScheduleExpire(ctx context.Context, tenantID, surveyID string, at time.Time) error {
	t, err := newTask(TypeSurveyExpire, Payload{tenantID, surveyID},
		asynq.Queue(QueueDefault), asynq.MaxRetry(10), asynq.Timeout(30*time.Second),
		asynq.TaskID(fmt.Sprintf("expire:%s:%s:%d", tenantID, surveyID, at.Unix())), asynq.ProcessAt(at))
	if err != nil {
		return err
	}
	return ignoreConflict(c.Asynq.EnqueueContext(ctx, t))
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

// Mux routes task types to handlers.
func (h *Handlers) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSurveySend, h.Send)
	mux.HandleFunc(TypeSurveyExpire, h.Expire)
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
// one small script per queue per check.
func NewServer(redis asynq.RedisConnOpt, cfg ServerConfig) *asynq.Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 20
	}
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   Queues,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		DelayedTaskCheckInterval: 250 * time.Millisecond,
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
