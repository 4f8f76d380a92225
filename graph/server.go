package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/graph/model"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/webhooks"
)

// Limits of the GraphQL server.
const (
	// ComplexityLimit bounds an operation's cost: each field costs 1 plus
	// its children, a list of n rows n × its children. One full page of
	// 100 surveys with every field costs about 2,400.
	ComplexityLimit = 5000
	// MaxDepth bounds nesting; the introspection query GraphiQL sends is
	// the deepest legitimate operation.
	MaxDepth = 15
	// ParserTokenLimit stops the parser after this many tokens, before it
	// builds an AST: a flood of directives or aliases costs at most this
	// much work. The introspection query GraphiQL sends is about 300 tokens,
	// the largest dashboard document under 200; 10,000 also keeps the
	// limit reachable under the 64 KiB body cap (4,000 aliases).
	ParserTokenLimit = 10_000
	// WorkerLimit is gqlgen's exec.worker_limit (gqlgen.yml): goroutines
	// per list field while marshalling the lists that stay concurrent
	// (those of objects with resolvers; the others marshal in order).
	WorkerLimit = 100
	// MaxBody caps a request body (queries, variables, APQ extensions).
	MaxBody = 128 << 10
	// trendCost and breakdownCost weigh the analytics lists, whose length
	// the arguments do not say.
	trendCost     = 10
	breakdownCost = 20
)

// Options configure the /graphql handler.
type Options struct {
	Svc     *survey.Service
	Updates Updates
	Hooks   *webhooks.Service // webhook endpoints
	Auth    tenants.Authenticator
	Log     *slog.Logger
	Metrics *metrics.Metrics // nil records nothing
	// Introspection on by default: dashboard builders explore the schema.
	Introspection  bool
	AllowedOrigins []string // CORS and websocket origins, like https://dash.example.com
	// Unavailable says an error means a backing service is down.
	Unavailable func(error) bool
	// Limit rate-limits requests once authenticated (per API key; a
	// websocket upgrade without a key header per client IP); nil: none.
	// Its 429 is written with WriteHTTPError.
	Limit func(http.Handler) http.Handler
}

// listCost is the complexity of a list of n rows.
func listCost(n, child int) int {
	return min(max(n, 1), 10_000) * child
}

// NewServer builds the gqlgen server: explicit transports, a parsed-query
// cache, automatic persisted queries, complexity and depth limits and the
// error presenter. It does not authenticate: NewHandler does.
func NewServer(o Options) *handler.Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cfg := Config{Resolvers: &Resolver{Svc: o.Svc, Updates: o.Updates, Hooks: o.Hooks}}
	cfg.Complexity.Query.Surveys = func(child int, first *int, _ *string, last *int, _ *string, _ *model.SurveyFilter, _ *model.SurveyOrder) int {
		n := 0
		if last != nil {
			n = *last
		} else if first != nil {
			n = *first
		}
		return listCost(n, child)
	}
	cfg.Complexity.WebhookEndpoint.Deliveries = func(child int, limit, _ *int) int { return listCost(intOr(limit, 20), child) }
	cfg.Complexity.CsatAnalytics.Trend = func(child int, _ *model.Granularity) int { return listCost(trendCost, child) }
	cfg.Complexity.CsatAnalytics.Breakdown = func(child int, _ model.BreakdownDimension) int { return listCost(breakdownCost, child) }

	srv := handler.New(NewExecutableSchema(cfg))
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		InitFunc:              wsInit(o.Auth),
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{
			OriginPatterns: originHosts(o.AllowedOrigins),
		}},
	})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postJSON{}) // transport.POST without re-compacting the data
	srv.SetParserTokenLimit(ParserTokenLimit)
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if o.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(extension.FixedComplexityLimit(ComplexityLimit))
	srv.Use(depthLimit{Max: MaxDepth})
	p := presenter{log: o.Log, unavailable: o.Unavailable}
	srv.SetErrorPresenter(p.present)
	srv.SetRecoverFunc(p.recoverPanic)
	srv.AroundOperations(operations(o.Svc, o.Metrics))
	return srv
}

// operations builds each operation's dataloaders and records its count
// and latency, labelled by type and first root field ("query surveys"):
// client-chosen operation names would be unbounded label values.
func operations(svc *survey.Service, m *metrics.Metrics) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		ctx = withLoaders(ctx, svc)
		oc := graphql.GetOperationContext(ctx)
		if m == nil || oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
			return next(ctx)
		}
		label := string(oc.Operation.Operation)
		if len(oc.Operation.SelectionSet) > 0 {
			if f, ok := oc.Operation.SelectionSet[0].(*ast.Field); ok {
				label += " " + f.Name
			}
		}
		start := time.Now()
		h := next(ctx)
		return func(ctx context.Context) *graphql.Response {
			resp := h(ctx)
			result := "ok"
			if resp != nil && len(resp.Errors) > 0 {
				result = "error"
			}
			m.GraphQLOps.WithLabelValues(label, result).Inc()
			m.GraphQLDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			return resp
		}
	}
}

// wsInit authenticates a websocket connection by the API key in its
// connection_init payload ("X-API-Key", or "Authorization": "Bearer ...");
// a key sent as a header on the upgrade request counts too.
func wsInit(auth tenants.Authenticator) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if _, err := tenants.FromContext(ctx); err == nil {
			return ctx, nil, nil
		}
		key := p.GetString("X-API-Key")
		if key == "" {
			key = p.GetString("x-api-key")
		}
		if a := p.Authorization(); key == "" && len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			key = strings.TrimSpace(a[7:])
		}
		pr, err := auth.Authenticate(ctx, key)
		if err != nil {
			// graphql-transport-ws: 4403 Forbidden closes an unauthorized init.
			ctx = transport.WithWebsocketCloseCode(ctx, 4403)
			ctx = transport.AppendCloseReason(ctx, CodeUnauthenticated)
			return ctx, nil, errs.New(errs.Unauthenticated, "missing or invalid API key")
		}
		return tenants.NewContext(ctx, pr), nil, nil
	}
}

// NewHandler serves /graphql: GraphiQL for browsers, CORS for the allowed
// origins, API-key authentication, then the gqlgen server. A request
// without a valid key is answered 401 with a GraphQL error whose
// extensions.code is UNAUTHENTICATED; a websocket authenticates in its
// connection_init instead.
func NewHandler(o Options) http.Handler {
	var srv http.Handler = NewServer(o)
	if o.Limit != nil {
		srv = o.Limit(srv)
	}
	page := playground.Handler("csat GraphQL", "/graphql")
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	return cors(o.AllowedOrigins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrade := r.Header.Get("Upgrade") != ""
		if r.Method == http.MethodGet && !upgrade && strings.Contains(r.Header.Get("Accept"), "text/html") {
			page.ServeHTTP(w, r)
			return
		}
		key := tenants.KeyFromRequest(r)
		if key == "" && upgrade {
			srv.ServeHTTP(w, r)
			return
		}
		p, err := o.Auth.Authenticate(r.Context(), key)
		if err != nil {
			writeAuthError(w, r, log, o.Unavailable, err)
			return
		}
		if r.ContentLength > MaxBody {
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, "request body is larger than 128 KiB", CodeBadUserInput)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		srv.ServeHTTP(w, r.WithContext(tenants.NewContext(r.Context(), p)))
	}))
}

type gqlResponse struct {
	Errors []gqlError `json:"errors"`
	Data   any        `json:"data"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func writeAuthError(w http.ResponseWriter, r *http.Request, log *slog.Logger, unavailable func(error) bool, err error) {
	status, msg, code := http.StatusUnauthorized, "missing or invalid API key", CodeUnauthenticated
	if errs.CodeOf(err) != errs.Unauthenticated {
		status, msg, code = http.StatusInternalServerError, "internal error", CodeInternal
		if unavailable != nil && unavailable(err) {
			status, msg = http.StatusServiceUnavailable, "the service is temporarily unavailable, please retry"
			w.Header().Set("Retry-After", "5")
		} else {
			log.ErrorContext(r.Context(), "graphql authentication failed", "err", err)
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="csat"`)
	}
	writeGraphQLError(w, status, msg, code)
}

// WriteHTTPError answers an error raised before GraphQL ran (such as a
// rate limit's) in the GraphQL response shape with its extensions.code.
func WriteHTTPError(w http.ResponseWriter, _ *http.Request, err error) {
	e := errs.As(err)
	if e == nil {
		e = errs.New(errs.Internal, "internal error")
	}
	status := http.StatusBadRequest
	switch e.Code {
	case errs.RateLimited:
		status = http.StatusTooManyRequests
	case errs.Unauthenticated:
		status = http.StatusUnauthorized
	case errs.Forbidden:
		status = http.StatusForbidden
	case errs.Internal, errs.Unavailable:
		status = http.StatusInternalServerError
	}
	writeGraphQLError(w, status, e.Message, codeOf(e.Code))
}

// writeGraphQLError answers a request refused before GraphQL ran, in the
// GraphQL response shape.
func writeGraphQLError(w http.ResponseWriter, status int, msg, code string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(gqlResponse{Errors: []gqlError{{Message: msg, Extensions: map[string]any{"code": code}}}})
}

// cors lets the allowed origins' dashboards call /graphql from browsers.
// Keys travel in headers, never cookies, so credentials are not allowed.
func cors(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		ok := origin != "" && slices.Contains(allowed, origin)
		if ok {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if ok {
				h := w.Header()
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Content-Type, X-API-Key, Authorization")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// originHosts turns allowed origins into the host patterns the websocket
// library checks Origin against (same-origin is always allowed).
func originHosts(origins []string) []string {
	var out []string
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			out = append(out, u.Host)
		}
	}
	return out
}
