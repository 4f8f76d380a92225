// Package metrics defines the service's Prometheus metrics in one place.
// A *Metrics is built once per process and handed to what records into it;
// a nil *Metrics is valid and records nothing, so tests need not wire it.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every csat_ collector.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests      *prometheus.CounterVec   // route, method, status
	HTTPDuration      *prometheus.HistogramVec // route, method
	GraphQLOps        *prometheus.CounterVec   // operation, result
	GraphQLDuration   *prometheus.HistogramVec // operation
	Surveys           *prometheus.CounterVec   // event: scheduled, sent, completed, expired
	Emails            *prometheus.CounterVec   // result: sent, failed
	RateLimited       *prometheus.CounterVec   // limit
	LimiterErrors     prometheus.Counter       // limiter failed open (Redis down)
	SweepRuns         *prometheus.CounterVec   // result: ok, error
	SweepEnqueued     prometheus.Counter
	SweepExpired      prometheus.Counter
	WebhookDeliveries *prometheus.CounterVec // result: success, failure, failed_final
	WebhooksDisabled  prometheus.Counter
}

// New registers every collector, plus the Go runtime and process ones, on
// a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "csat_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		GraphQLOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_graphql_operations_total", Help: "GraphQL operations by operation name and result.",
		}, []string{"operation", "result"}),
		GraphQLDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "csat_graphql_operation_duration_seconds", Help: "GraphQL operation latency.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		Surveys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_surveys_total", Help: "Survey lifecycle events: scheduled, sent, completed, expired.",
		}, []string{"event"}),
		Emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_emails_total", Help: "Survey emails by result: sent or failed.",
		}, []string{"result"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_rate_limit_rejections_total", Help: "Requests refused with 429, by limit.",
		}, []string{"limit"}),
		LimiterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "csat_rate_limiter_errors_total", Help: "Rate-limit checks that failed (Redis down) and let the request through.",
		}),
		SweepRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_sweep_runs_total", Help: "Sweep runs by result.",
		}, []string{"result"}),
		SweepEnqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "csat_sweep_enqueued_total", Help: "Sends the sweep (re-)enqueued.",
		}),
		SweepExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "csat_sweep_expired_total", Help: "Surveys the sweep expired.",
		}),
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "csat_webhook_deliveries_total", Help: "Webhook delivery attempts by result.",
		}, []string{"result"}),
		WebhooksDisabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "csat_webhook_endpoints_disabled_total", Help: "Webhook endpoints disabled after failing for 3 days (csat.webhook.disabled).",
		}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.GraphQLOps, m.GraphQLDuration, m.Surveys, m.Emails,
		m.RateLimited, m.LimiterErrors, m.SweepRuns, m.SweepEnqueued, m.SweepExpired,
		m.WebhookDeliveries, m.WebhooksDisabled)
	return m
}
