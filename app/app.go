package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/csat/csat/dashboard"
	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/jobs"
	"github.com/csat/csat/live"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/ops"
	"github.com/csat/csat/pages"
	"github.com/csat/csat/ratelimit"
	"github.com/csat/csat/rest"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/view"
	"github.com/csat/csat/webhooks"
)

// App is a wired service: connections, domain and adapters.
type App struct {
	Cfg     Config
	Log     *slog.Logger
	DB      *bun.DB
	Redis   redis.UniversalClient
	RedisOp asynq.RedisConnOpt
	Queue   *asynq.Client
	Svc     *survey.Service
	Tenants *tenants.Store
	Hooks   *webhooks.Service
	Handler http.Handler
	// Metrics holds every csat_ collector; record into it, never into globals.
	Metrics *metrics.Metrics
	Routes  chi.Routes // the router behind Handler, for route-by-route tests (chi.Walk)

	mon  *asynqmon.HTTPHandler // nil unless mounted
	live *live.Hub             // publishes survey changes; closed before Redis
	smtp *mail.SMTP            // nil when emails are only logged
}

// New connects to Postgres and Redis, migrates when configured to, and
// builds the HTTP handler.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	a := &App{Cfg: cfg, Log: log, Metrics: metrics.New()}
	if cfg.AutoMigrate {
		if err := migrateAsOwner(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
	}
	var err error
	if a.DB, err = db.Open(cfg.AppDatabaseURL, cfg.DBMaxConns); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	warnIfBypassingRLS(ctx, a.DB, log)
	if a.RedisOp, err = asynq.ParseRedisURI(cfg.RedisURL); err != nil {
		a.DB.Close()
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	a.Redis = a.RedisOp.MakeRedisClient().(redis.UniversalClient)
	a.Queue = asynq.NewClientFromRedisClient(a.Redis)
	a.Metrics.WatchQueues(asynq.NewInspectorFromRedisClient(a.Redis))

	var sender mail.Sender = mail.Log{Logger: log}
	if cfg.SMTPURL != "" {
		if a.smtp, err = mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom); err != nil {
			a.Close()
			return nil, err
		}
		// Up to WORKER_CONCURRENCY emails are in flight (MaxInFlight below):
		// keep their connections for the next ones.
		a.smtp.MaxIdle = max(a.smtp.MaxIdle, cfg.WorkerConcurrency)
		sender = a.smtp
	} else {
		log.Warn("SMTP_URL is unset: survey emails are logged, not sent")
	}
	a.Svc = &survey.Service{
		DB:           a.DB,
		Jobs:         &jobs.Client{Asynq: a.Queue},
		Mailer:       metrics.Sender{Sender: sender, M: a.Metrics},
		BaseURL:      cfg.PublicBaseURL,
		ClaimLease:   cfg.SendClaimLease,
		AsyncHandoff: cfg.SendAsyncHandoff,
		HandoffGroup: cfg.SendHandoffGroup,
		MaxInFlight:  cfg.WorkerConcurrency,
		Log:          log,
		Events:       []survey.EventSink{metrics.SurveySink{M: a.Metrics}},
	}
	if a.Hooks, err = webhooks.New(a.DB, a.Queue, cfg.Webhooks, log, a.Metrics); err != nil {
		a.Close()
		return nil, err
	}
	a.Svc.Events = append(a.Svc.Events, a.Hooks)
	// Live updates for GraphQL subscriptions, from every process's changes.
	a.live = &live.Hub{Redis: a.Redis, Log: log}
	a.Svc.Events = append(a.Svc.Events, a.live)
	a.Tenants = &tenants.Store{DB: a.DB, CacheTTL: cfg.AuthCacheTTL}
	rest.Unavailable = db.IsUnavailable
	a.Handler = a.router()
	return a, nil
}

func (a *App) router() http.Handler {
	r := chi.NewRouter()
	a.Routes = r
	r.Use(ops.HTTP{Log: a.Log, Metrics: a.Metrics}.Middleware, middleware.Recoverer, securityHeaders, limitBody)
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	a.opsRoutes(r)
	if a.Cfg.Role != RoleWorker {
		restLimit, pageLimit := a.limits()
		(&pages.Handler{Svc: a.Svc, Limit: pageLimit}).Routes(r)
		(&rest.Handler{Svc: a.Svc, Auth: a.Tenants, Log: a.Log, Webhooks: a.Hooks, Limit: restLimit}).Routes(r)
		r.Mount(dashboard.Prefix, dashboard.Handler())
		gql := a.graphQL()
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodOptions} {
			r.Method(m, "/graphql", gql)
		}
	}
	return r
}

// limits builds the rate-limit hooks of the REST API (JSON 429s) and the
// pages (HTML 429s); both nil when RATE_LIMITS_ENABLED=false.
func (a *App) limits() (restLimit, pageLimit func(string) func(http.Handler) http.Handler) {
	if !a.Cfg.RateLimitsEnabled {
		a.Log.Warn("RATE_LIMITS_ENABLED=false: requests are not rate limited")
		return nil, nil
	}
	l := ratelimit.New(a.Redis, ratelimit.Options{TrustedProxies: a.Cfg.TrustedProxies, Log: a.Log, Metrics: a.Metrics})
	restLimit = func(name string) func(http.Handler) http.Handler { return l.Middleware(name, rest.WriteError) }
	pageLimit = func(name string) func(http.Handler) http.Handler { return l.Middleware(name, view.RenderError) }
	return restLimit, pageLimit
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body at rest.MaxBody (64 KiB) for every
// route, present and future: a declared larger body is refused with 413
// before it is read, and a chunked one fails when a handler reads past
// the cap (handlers map http.MaxBytesError to 413).
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > rest.MaxBody {
			w.Header().Set("Connection", "close")
			if strings.HasPrefix(r.URL.Path, "/s/") {
				view.Render(w, r, http.StatusRequestEntityTooLarge, view.PageError, view.PageData{MessageKey: "err_form"})
				return
			}
			rest.WriteError(w, r, errs.New(errs.TooLarge, "request body is larger than %d bytes", rest.MaxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, rest.MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	rest.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when Postgres and Redis answer, 503 naming what is down.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "redis": "ok"}
	status := http.StatusOK
	if err := a.DB.PingContext(ctx); err != nil {
		checks["postgres"], status = "down", http.StatusServiceUnavailable
	}
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		checks["redis"], status = "down", http.StatusServiceUnavailable
	}
	body := map[string]any{"status": "ready", "checks": checks}
	if status != http.StatusOK {
		body["status"] = "unavailable"
	}
	rest.WriteJSON(w, status, body)
}

// Close releases connections.
func (a *App) Close() {
	if a.smtp != nil {
		_ = a.smtp.Close()
	}
	if a.mon != nil {
		_ = a.mon.Close()
	}
	if a.live != nil {
		a.live.Close()
	}
	if a.Queue != nil {
		_ = a.Queue.Close()
	}
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.DB != nil {
		_ = a.DB.Close()
	}
}

// Serve runs the HTTP server on ln and, by role, the worker and the sweep,
// until ctx ends; then it stops accepting, lets in-flight requests and
// tasks finish within the shutdown timeout and returns.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: a.Cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	var worker *asynq.Server
	var wg sync.WaitGroup
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	// Every role writes surveys, so every process folds its analytics
	// deltas (stopped with the sweep, after a last fold).
	wg.Add(1)
	go func() { defer wg.Done(); a.Svc.RunFolds(sweepCtx, a.Cfg.AnalyticsFoldInterval) }()
	if a.Cfg.Role != RoleAPI {
		worker = jobs.NewServer(a.RedisOp, jobs.ServerConfig{
			Concurrency: a.Cfg.WorkerConcurrency, ShutdownTimeout: a.Cfg.ShutdownTimeout, Log: a.Log,
		})
		// A wave's tasks each send a group of emails at once: about
		// WORKER_CONCURRENCY emails (and SMTP connections) in flight.
		fanout := (a.Cfg.WorkerConcurrency + a.Cfg.SendHandoffGroup - 1) / a.Cfg.SendHandoffGroup
		h := &jobs.Handlers{Svc: a.Svc, Log: a.Log, Jobs: &jobs.Client{Asynq: a.Queue}, Fanout: fanout,
			Register: []func(*asynq.ServeMux){a.Hooks.Register}}
		if err := worker.Start(h.Mux()); err != nil {
			_ = srv.Close()
			return fmt.Errorf("start worker: %w", err)
		}
		sw := &jobs.Sweeper{Svc: a.Svc, Redis: a.Redis, Interval: a.Cfg.ReconcileInterval, Log: a.Log, OnRun: a.Metrics.SweepRun}
		wg.Add(1)
		go func() { defer wg.Done(); sw.Run(sweepCtx) }()
		wg.Add(1)
		go func() { defer wg.Done(); a.Hooks.RunSweep(sweepCtx, a.Cfg.ReconcileInterval) }()
	}
	a.Log.Info("serving", "addr", ln.Addr().String(), "role", a.Cfg.Role)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	a.Log.Info("shutting down", "timeout", a.Cfg.ShutdownTimeout.String())
	// Requests and tasks drain side by side, so the whole stop stays within
	// SHUTDOWN_TIMEOUT (plus the time to requeue what did not finish).
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.Cfg.ShutdownTimeout)
	defer cancel()
	var stopping sync.WaitGroup
	stopping.Go(func() {
		if e := srv.Shutdown(shutdownCtx); e != nil {
			a.Log.Warn("http shutdown: closing the connections still open", "err", e)
			_ = srv.Close()
		}
	})
	stopSweep()
	wg.Wait()
	if worker != nil {
		// Waits for in-flight tasks up to ShutdownTimeout, then puts the
		// unfinished ones back in their queue (their handler's context is
		// cancelled, so the send's transaction rolls back).
		stopping.Go(worker.Shutdown)
	}
	stopping.Wait()
	if !a.Svc.WaitSends(5 * time.Second) {
		a.Log.Warn("sends still running at shutdown; their claims lapse on their own")
	}
	a.Log.Info("stopped")
	return err
}

// migrateAsOwner creates the database if missing and migrates it over a
// short-lived connection as the owner (DATABASE_URL); the service itself
// then connects as the app role (APP_DATABASE_URL).
func migrateAsOwner(ctx context.Context, dsn string) error {
	if err := db.EnsureDatabase(ctx, dsn); err != nil {
		return err
	}
	owner, err := db.OpenOwner(dsn)
	if err != nil {
		return fmt.Errorf("open database as owner: %w", err)
	}
	defer owner.Close()
	return db.Migrate(ctx, owner)
}

// warnIfBypassingRLS logs when the service's role ignores row-level
// security (a superuser, or APP_DATABASE_URL pointed at the owner): the
// service works, but its second tenant wall is down.
func warnIfBypassingRLS(ctx context.Context, bdb *bun.DB, log *slog.Logger) {
	role, bypass, err := db.BypassesRLS(ctx, bdb)
	if err != nil {
		log.Warn("could not check the database role", "err", err)
		return
	}
	if bypass {
		log.Warn("APP_DATABASE_URL connects as a role that bypasses row-level security", "role", role)
	}
}
