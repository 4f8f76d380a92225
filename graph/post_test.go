package graph

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// TestPostJSONAsGqlgen: postJSON answers every kind of POST as gqlgen's
// transport.POST does (status, content type, the decoded body), through
// the same executor.
func TestPostJSONAsGqlgen(t *testing.T) {
	// No service and no tenant: csatConfig's resolver fails, an error on its path.
	exec := executor.New(NewExecutableSchema(Config{Resolvers: &Resolver{}}))
	exec.SetRecoverFunc(func(context.Context, any) error { return errors.New("internal error") })
	exec.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](10)})
	exec.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp != nil && graphql.HasOperationContext(ctx) && strings.Contains(graphql.GetOperationContext(ctx).RawQuery, "ext") {
			resp.Extensions = map[string]any{"cost": 1}
		}
		return resp
	})

	const unreadable = "(unreadable)"
	const apq = `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"0000000000000000000000000000000000000000000000000000000000000000"}}`
	for _, c := range []struct{ name, body, accept string }{
		{"ok", `{"query":"{ __typename }"}`, ""},
		{"ok-graphql-response", `{"query":"{ __typename }"}`, "application/graphql-response+json"},
		{"ok-any", `{"query":"{ __typename }"}`, "*/*"},
		{"ok-unknown-accept", `{"query":"{ __typename }"}`, "text/plain"},
		{"extensions", `{"query":"{ ext: __typename }"}`, ""},
		{"html-characters-in-error", `{"query":"{ __typename <>& }"}`, ""},
		{"resolver-error", `{"query":"{ csatConfig { enabled } }"}`, ""},
		{"parse-error", `{"query":"{ surveys("}`, ""},
		{"parse-error-graphql-response", `{"query":"{ surveys("}`, "application/graphql-response+json"},
		{"validation-error", `{"query":"{ nope }"}`, ""},
		{"variables", `{"query":"query($n: Int) { surveys(first: $n) { totalCount } }","variables":{"n":"ten"}}`, ""},
		{"apq-unknown-hash", `{` + apq + `}`, ""},
		{"bad-json", `{"query":`, ""},
		{"no-body", ``, ""},
		{"unreadable-body", unreadable, ""}, // as when MaxBytesReader stops it
	} {
		t.Run(c.name, func(t *testing.T) {
			do := func(tr graphql.Transport) *httptest.ResponseRecorder {
				var body io.Reader = strings.NewReader(c.body)
				if c.body == unreadable {
					body = iotest.ErrReader(errors.New("http: request body too large"))
				}
				req := httptest.NewRequest("POST", "/graphql", body)
				req = req.WithContext(graphql.StartOperationTrace(req.Context())) // as handler.Server does
				req.Header.Set("Content-Type", "application/json")
				if c.accept != "" {
					req.Header.Set("Accept", c.accept)
				}
				if !tr.Supports(req) {
					t.Fatalf("%T does not support the request", tr)
				}
				rec := httptest.NewRecorder()
				tr.Do(rec, req, exec)
				return rec
			}
			want, got := do(transport.POST{}), do(postJSON{})
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("%d %q, gqlgen %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
			var g, w any
			if err := json.Unmarshal(got.Body.Bytes(), &g); err != nil {
				t.Fatalf("body %s: %v", got.Body, err)
			}
			_ = json.Unmarshal(want.Body.Bytes(), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("body\n%s\ngqlgen's\n%s", got.Body, want.Body)
			}
		})
	}
}
