// Package ops holds what operators see of a running service over HTTP: the
// request id, the access log, the HTTP metrics and the operator token
// that guards /metrics and asynqmon.
package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/tenants"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// saneID accepts an incoming request id only if it is short and plain, so
// a client cannot inject into the logs or the response header.
func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("-_.:", c):
		default:
			return false
		}
	}
	return true
}

// HTTP observes every request: it assigns the request id, records the
// HTTP metrics and writes one access log line. It must be the outermost
// middleware of the router.
type HTTP struct {
	Log     *slog.Logger
	Metrics *metrics.Metrics // nil: no metrics
}

// quiet routes are polled by machines; their log lines are debug level.
var quiet = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Middleware is the chi middleware.
func (o HTTP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !saneID(id) {
			id = secret.Token(12)
		}
		w.Header().Set(RequestIDHeader, id)
		ctx, slot := tenants.WithSlot(context.WithValue(r.Context(), requestIDKey, id))
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			// Deferred so a request whose handler panicked past the
			// recoverer (http.ErrAbortHandler) is still counted.
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			o.observe(r, chi.RouteContext(r.Context()).RoutePattern(), id, slot.TenantID(), status, ww.BytesWritten(), time.Since(start))
		}()
		next.ServeHTTP(ww, r.WithContext(ctx))
	})
}

// observe logs the route pattern, never the raw URL: public links carry
// their token in the path or the query.
func (o HTTP) observe(r *http.Request, route, id, tenantID string, status, size int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	method := normMethod(r.Method)
	if m := o.Metrics; m != nil {
		m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
	}
	if o.Log == nil {
		return
	}
	level := slog.LevelInfo
	if quiet[route] && status < 500 {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int("bytes", size),
	}
	if tenantID != "" {
		attrs = append(attrs, slog.String("tenant_id", tenantID))
	}
	o.Log.LogAttrs(r.Context(), level, "request", attrs...)
}

// normMethod bounds the method label: anything unusual is "other".
func normMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// LogHandler adds the request id of the record's context to every log
// line written with one (slog.InfoContext(ctx, ...)), so an internal error
// logged by a handler can be found from the id the client saw.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{h.Handler.WithGroup(name)}
}

// RequireToken guards operator endpoints with the operator token: HTTP
// Basic auth with the token as password (any user name), or
// "Authorization: Bearer <token>". Comparing SHA-256 digests in constant
// time leaks neither the token nor its length. fail writes the 401.
func RequireToken(token string, fail func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := presented(r)
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="csat operations", charset="UTF-8"`)
				fail(w, r, errs.New(errs.Unauthenticated, "the operator token is required (Basic auth password or Bearer)"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// presented returns the token a request carries.
func presented(r *http.Request) (string, bool) {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, pass != ""
	}
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		t := strings.TrimSpace(a[7:])
		return t, t != ""
	}
	return "", false
}
