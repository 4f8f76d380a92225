package app

import (
	"net/http"

	"github.com/csat/csat/db"
	"github.com/csat/csat/graph"
	"github.com/csat/csat/live"
)

// graphQL builds the /graphql handler.
func (a *App) graphQL() http.Handler {
	return graph.NewHandler(graph.Options{
		Svc:            a.Svc,
		Updates:        &live.Hub{Redis: a.Redis, Log: a.Log},
		Auth:           a.Tenants,
		Log:            a.Log,
		Introspection:  a.Cfg.GraphQLIntrospection,
		AllowedOrigins: a.Cfg.CORSAllowedOrigins,
		Unavailable:    db.IsUnavailable,
	})
}
