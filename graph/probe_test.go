package graph_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/uptrace/bun"

	"github.com/csat/csat/graph"
	"github.com/csat/csat/survey"
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
	// A GraphQL handler of its own over the service's pool, with the counter.
	probes := &probeCounter{}
	svc := &survey.Service{DB: s.App.DB.WithQueryHook(probes), Jobs: s.App.Svc.Jobs}
	c := client.New(graph.NewHandler(graph.Options{Svc: svc, Auth: s.App.Tenants}), client.Path("/graphql"), client.AddHeader("X-API-Key", key))
	post := func(t *testing.T, query string, vars map[string]any) map[string]any {
		t.Helper()
		var out map[string]any
		var opts []client.Option
		for k, v := range vars {
			opts = append(opts, client.Var(k, v))
		}
		if err := c.Post(query, &out, opts...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return out
	}
	first := post(t, `{ surveys(first: 2) { pageInfo { endCursor } } }`, nil)
	after := dig(first, "surveys", "pageInfo", "endCursor").(string)
	last := post(t, `{ surveys(last: 2) { pageInfo { startCursor } } }`, nil)
	beforeLast := dig(last, "surveys", "pageInfo", "startCursor").(string)

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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := after
			if strings.HasPrefix(tc.name, "backward") {
				cur = beforeLast
			}
			probes.n.Store(0)
			d := post(t, tc.query, map[string]any{"c": cur})
			if tc.path != nil {
				if got := dig(d, tc.path...); got != tc.want {
					t.Errorf("%s = %v, want %v", strings.Join(tc.path, "."), got, tc.want)
				}
			}
			if n := probes.n.Load(); n != tc.probes {
				t.Errorf("%d probe queries, want %d", n, tc.probes)
			}
		})
	}
}
