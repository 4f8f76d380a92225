package graph_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/csat/csat/testenv"
)

// probeCounter counts the statements that probe for rows beyond a cursor.
type probeCounter struct{ n atomic.Int64 }

func (c *probeCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *probeCounter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.HasPrefix(e.Query, "SELECT EXISTS") {
		c.n.Add(1)
	}
}

// TestPageInfoProbeOnlyWhenAsked: the flag of the side behind a page's
// starting cursor costs a query, run only when the query asks for that
// flag (also through a fragment or an alias), and then right.
func TestPageInfoProbeOnlyWhenAsked(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	for i := range 5 {
		intake(t, s, tenantID, fmt.Sprintf("conv-%d", i))
	}
	probes := &probeCounter{}
	s.App.DB.AddQueryHook(probes)
	first := mustGQL(t, s, key, `{ surveys(first: 2) { pageInfo { endCursor } } }`, nil)
	after := dig(first, "surveys", "pageInfo", "endCursor").(string)
	last := mustGQL(t, s, key, `{ surveys(last: 2) { pageInfo { startCursor } } }`, nil)
	beforeLast := dig(last, "surveys", "pageInfo", "startCursor").(string)
	probes.n.Store(0)

	cases := []struct {
		name, query string
		path        []string
		want        any // the flag's value; nil: not asked
		probes      int64
	}{
		{"forward-not-asked", `query($c: String) { surveys(first: 2, after: $c) { edges { cursor } pageInfo { hasNextPage endCursor } } }`,
			nil, nil, 0},
		{"forward-asked", `query($c: String) { surveys(first: 2, after: $c) { pageInfo { hasPreviousPage } } }`,
			[]string{"surveys", "pageInfo", "hasPreviousPage"}, true, 1},
		{"forward-fragment", `query($c: String) { surveys(first: 2, after: $c) { pageInfo { ...pi } } } fragment pi on PageInfo { hasPreviousPage }`,
			[]string{"surveys", "pageInfo", "hasPreviousPage"}, true, 1},
		{"forward-alias", `query($c: String) { surveys(first: 2, after: $c) { a: pageInfo { hasNextPage } b: pageInfo { prev: hasPreviousPage } } }`,
			[]string{"surveys", "b", "prev"}, true, 1},
		{"backward-not-asked", `query($c: String) { surveys(last: 2, before: $c) { pageInfo { hasPreviousPage } } }`,
			nil, nil, 0},
		{"backward-asked", `query($c: String) { surveys(last: 2, before: $c) { pageInfo { hasNextPage } } }`,
			[]string{"surveys", "pageInfo", "hasNextPage"}, true, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur := after
			if strings.HasPrefix(c.name, "backward") {
				cur = beforeLast
			}
			probes.n.Store(0)
			d := mustGQL(t, s, key, c.query, map[string]any{"c": cur})
			if c.path != nil {
				if got := dig(d, c.path...); got != c.want {
					t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
				}
			}
			if n := probes.n.Load(); n != c.probes {
				t.Errorf("%d probe queries, want %d", n, c.probes)
			}
		})
	}
}
