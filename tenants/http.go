package tenants

import (
	"context"
	"net/http"
	"strings"
)

// ErrorWriter writes an error response in the adapter's own format.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// KeyFromRequest returns the API key sent as X-API-Key or as a Bearer token.
func KeyFromRequest(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// Authenticator resolves keys; *Store is one.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (Principal, error)
}

// Middleware authenticates every request with its API key and puts the
// principal in the request context; a missing or unknown key is refused.
func Middleware(a Authenticator, fail ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.Authenticate(r.Context(), KeyFromRequest(r))
			if err != nil {
				fail(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		})
	}
}
