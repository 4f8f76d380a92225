package graph

import (
	"context"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
)

// loaders batch what resolvers would otherwise fetch row by row; built per
// operation so nothing is cached across requests or tenants.
type loaders struct {
	survey *dataloadgen.Loader[string, *db.Survey]
}

type loadersKey struct{}

func newLoaders(svc *survey.Service) *loaders {
	return &loaders{
		survey: dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]*db.Survey, []error) {
			rows, err := svc.GetMany(ctx, ids)
			if err != nil {
				return nil, []error{err}
			}
			byID := make(map[string]*db.Survey, len(rows))
			for i := range rows {
				byID[rows[i].ID] = &rows[i]
			}
			out := make([]*db.Survey, len(ids)) // unknown ids stay nil: null
			for i, id := range ids {
				out[i] = byID[id]
			}
			return out, nil
		}, dataloadgen.WithWait(time.Millisecond), dataloadgen.WithBatchCapacity(survey.MaxLimit)),
	}
}

func withLoaders(ctx context.Context, svc *survey.Service) context.Context {
	return context.WithValue(ctx, loadersKey{}, newLoaders(svc))
}

// surveyByID loads one survey of the caller's tenant through the
// operation's batch loader; nil when unknown.
func surveyByID(ctx context.Context, svc *survey.Service, id string) (*db.Survey, error) {
	l, ok := ctx.Value(loadersKey{}).(*loaders)
	if !ok {
		l = newLoaders(svc)
	}
	return l.survey.Load(ctx, id)
}
