// Package ratelimit limits request rates with a GCRA limiter kept in
// Redis, so every API process draws on one budget. Authenticated routes
// count per API key, public ones per client IP. When Redis fails, requests
// pass (fail open): a limiter must never take the API down.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/metrics"
	"github.com/csat/csat/tenants"
)

// Limits are the budgets of the named routes, per API key or client IP.
// The documented ones: rate, list, submit and analytics.
var Limits = map[string]redis_rate.Limit{
	"rate":      redis_rate.PerMinute(30),  // GET/HEAD /csat/rate, per IP
	"submit":    redis_rate.PerMinute(10),  // POST /csat/{token}/submit and POST /s/{token}, per IP
	"page":      redis_rate.PerMinute(30),  // GET /s/{token}, per IP
	"list":      redis_rate.PerMinute(30),  // GET /csat/surveys, per key
	"analytics": redis_rate.PerMinute(30),  // GET /csat/analytics, per key
	"intake":    redis_rate.PerMinute(300), // POST /csat/surveys, per key (helpdesk bursts)
	"read":      redis_rate.PerMinute(120), // GET /csat/surveys/{id}, GET /csat/config, per key
	"config":    redis_rate.PerMinute(10),  // PUT /csat/config, per key
	"export":    redis_rate.PerMinute(5),   // GET /csat/surveys/export, per key
	"openapi":   redis_rate.PerMinute(60),  // GET /openapi.json, per IP
	"graphql":   redis_rate.PerMinute(120), // GET/POST /graphql, per key (a dashboard view is several queries)
}

// DefaultLimit applies to a route name missing from Limits.
var DefaultLimit = redis_rate.PerMinute(60)

// ErrorWriter writes the 429 in the adapter's format.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Limiter is the middleware factory.
type Limiter struct {
	limiter        *redis_rate.Limiter
	trusted        []netip.Prefix
	log            *slog.Logger
	metrics        *metrics.Metrics
	limits         map[string]redis_rate.Limit
	openUntil      atomic.Int64 // unix nanos: skip Redis until then after a failure
	lastFailureLog atomic.Int64
}

// Options configure a Limiter.
type Options struct {
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed
	Log            *slog.Logger
	Metrics        *metrics.Metrics            // nil records nothing
	Limits         map[string]redis_rate.Limit // nil: Limits
}

// New returns a limiter storing its state in rdb.
func New(rdb redis.UniversalClient, o Options) *Limiter {
	l := &Limiter{limiter: redis_rate.NewLimiter(rdb), trusted: o.TrustedProxies, log: o.Log, metrics: o.Metrics, limits: o.Limits}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.limits == nil {
		l.limits = Limits
	}
	return l
}

// checkTimeout bounds a Redis round trip; breakerPause is how long the
// limiter skips Redis after a failure, so an outage costs no latency.
const (
	checkTimeout = 200 * time.Millisecond
	breakerPause = 2 * time.Second
)

// Middleware limits a route by the named budget and writes 429s with fail.
// Authenticated requests (a principal in the context, so it must run after
// authentication) count per API key; others per client IP.
func (l *Limiter) Middleware(name string, fail ErrorWriter) func(http.Handler) http.Handler {
	limit, ok := l.limits[name]
	if !ok { // a route added without its own entry in Limits
		limit = DefaultLimit
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := l.allow(r.Context(), name+":"+l.identity(r), limit)
			if err != nil {
				l.failedOpen(r.Context(), name, err)
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(limit.Burst))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
			h.Set("X-RateLimit-Reset", strconv.Itoa(seconds(res.ResetAfter)))
			if res.Allowed == 0 {
				retry := max(seconds(res.RetryAfter), 1)
				h.Set("Retry-After", strconv.Itoa(retry))
				if l.metrics != nil {
					l.metrics.RateLimited.WithLabelValues(name).Inc()
				}
				fail(w, r, errs.New(errs.RateLimited, "too many requests: at most %d per minute; retry in %d seconds", limit.Burst, retry))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

var errBreakerOpen = errors.New("rate limiter paused after a Redis failure")

func (l *Limiter) allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error) {
	if time.Now().UnixNano() < l.openUntil.Load() {
		return nil, errBreakerOpen
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	res, err := l.limiter.Allow(ctx, "csat:"+key, limit)
	if err != nil {
		l.openUntil.Store(time.Now().Add(breakerPause).UnixNano())
		return nil, err
	}
	return res, nil
}

// failedOpen counts a request let through unchecked and logs the cause at
// most every few seconds (an outage must not flood the log).
func (l *Limiter) failedOpen(ctx context.Context, name string, err error) {
	if l.metrics != nil {
		l.metrics.LimiterErrors.Inc()
	}
	now := time.Now().UnixNano()
	last := l.lastFailureLog.Load()
	if now-last > int64(10*time.Second) && l.lastFailureLog.CompareAndSwap(last, now) {
		l.log.WarnContext(ctx, "rate limiter unavailable: letting requests through", "limit", name, "err", err)
	}
}

// seconds rounds d up to whole seconds, never below 0.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// identity is what a request is counted by: its API key id when
// authenticated, else its client IP.
func (l *Limiter) identity(r *http.Request) string {
	if p, err := tenants.FromContext(r.Context()); err == nil && p.KeyID != "" {
		return "key:" + p.TenantID + ":" + p.KeyID
	}
	return "ip:" + ClientIP(r, l.trusted).String()
}

// ClientIP is the peer's address, or, when the peer is a trusted proxy,
// the rightmost X-Forwarded-For address that is not a trusted proxy (the
// ones left of it could be forged by the client).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			break // garbage: stop believing the header here
		}
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads "ip", "ip:port" or "[ip]:port"; invalid gives the zero Addr.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// ParsePrefixes reads a comma-separated CIDR list (a bare IP is a /32 or
// /128), as TRUSTED_PROXIES holds.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
