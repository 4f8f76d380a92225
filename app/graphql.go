package app

import (
	"net/http"

	"github.com/csat/csat/db"
	"github.com/csat/csat/graph"
	"github.com/csat/csat/live"
	"github.com/csat/csat/ratelimit"
)

// graphQL builds the /graphql handler.
func (a *App) graphQL() http.Handler {
	var limit func(http.Handler) http.Handler
	if a.Cfg.RateLimitsEnabled {
		l := ratelimit.New(a.Redis, ratelimit.Options{TrustedProxies: a.Cfg.TrustedProxies, Log: a.Log, Metrics: a.Metrics})
		limit = l.Middleware("graphql", graph.WriteHTTPError)
	}
	return graph.NewHandler(graph.Options{
		Svc:            a.Svc,
		Updates:        &live.Hub{Redis: a.Redis, Log: a.Log},
		Hooks:          a.Hooks,
		Auth:           a.Tenants,
		Log:            a.Log,
		Introspection:  a.Cfg.GraphQLIntrospection,
		AllowedOrigins: a.Cfg.CORSAllowedOrigins,
		Unavailable:    db.IsUnavailable,
		Metrics:        a.Metrics,
		Limit:          limit,
	})
}
