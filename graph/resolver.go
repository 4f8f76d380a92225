// Package graph is the GraphQL adapter: the schema (*.graphqls), gqlgen's
// generated executor, resolvers that each call one survey.Service method,
// and the hardened HTTP handler.
package graph

// gqlgen, then seqlists: the lists of these types, whose fields resolve
// nothing, marshal in order rather than a goroutine per element, and their
// fields that are struct fields of a scalar or enum are marshalled
// directly, without gqlgen's per-field context and middleware chain
// (gqlgen.yml). Field middleware (AroundFields) would not see those.
//
//go:generate go tool gqlgen generate
//go:generate go run ./internal/seqlists -types TrendPoint,BreakdownRow,RatingCount,SurveyEdge,WebhookDelivery generated.go

import (
	"context"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/webhooks"
)

// Updates streams the caller's tenant's survey changes (the live package
// over Redis pub/sub).
type Updates interface {
	Subscribe(ctx context.Context) (<-chan *db.Survey, error)
}

// Resolver holds what the resolvers use; built once per server.
type Resolver struct {
	Svc     *survey.Service
	Updates Updates
	Hooks   *webhooks.Service // webhook endpoints (nil: the webhook fields fail)
}
