package app

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/csat/csat/ops"
	"github.com/csat/csat/rest"
)

// AsynqmonPath is where the asynqmon UI and API are mounted.
const AsynqmonPath = "/ops/asynq"

// opsRoutes mounts the operator endpoints: /metrics in every role (behind
// OPS_TOKEN when one is set) and, in the api and all roles, asynqmon
// (only with OPS_TOKEN: it can delete and run tasks, so it is never open).
func (a *App) opsRoutes(r chi.Router) {
	guard := func(next http.Handler) http.Handler { return next }
	if a.Cfg.OpsToken != "" {
		guard = ops.RequireToken(a.Cfg.OpsToken, rest.WriteError)
	}
	r.With(guard).Method(http.MethodGet, "/metrics",
		promhttp.HandlerFor(a.Metrics.Registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{a}}))

	if a.Cfg.Role == RoleWorker {
		return
	}
	if a.Cfg.OpsToken == "" {
		a.Log.Warn("OPS_TOKEN is unset: asynqmon at " + AsynqmonPath + "/ is off and /metrics is open")
		return
	}
	a.mon = asynqmon.New(asynqmon.Options{
		RootPath:     AsynqmonPath,
		RedisConnOpt: a.RedisOp,
		ReadOnly:     a.Cfg.AsynqmonReadOnly,
	})
	r.With(guard).Mount(a.mon.RootPath(), a.mon)
}

// slogPrinter lets promhttp report scrape errors in the service log.
type slogPrinter struct{ a *App }

func (p slogPrinter) Println(v ...any) { p.a.Log.Warn("metrics", "err", v) }
