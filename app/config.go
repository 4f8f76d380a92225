// Package app wires the service together: configuration from the
// environment, connections, the HTTP router, the worker and the sweep.
package app

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/ratelimit"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/webhooks"
)

// Config is everything the service reads from its environment.
type Config struct {
	DatabaseURL       string // the owner: creates the database, migrates
	AppDatabaseURL    string // the service: csat_app, bound by row-level security
	RedisURL          string
	HTTPAddr          string
	PublicBaseURL     string
	SMTPURL           string
	MailFrom          string
	OpsToken          string
	AsynqmonReadOnly  bool
	ReconcileInterval time.Duration
	AutoMigrate       bool
	Role              string // all, api or worker
	WorkerConcurrency int
	ShutdownTimeout   time.Duration
	SendClaimLease    time.Duration // how long a send's claim keeps other workers off a survey
	// SendAsyncHandoff lets each email's handoff commit without waiting
	// for the disk (SEND_ASYNC_HANDOFF; survey.Service.AsyncHandoff).
	SendAsyncHandoff bool
	// SendHandoffGroup is how many emails of a batch go out together, with
	// one handoff transaction (SEND_HANDOFF_GROUP; survey.Service.HandoffGroup).
	SendHandoffGroup int
	// AnalyticsFoldInterval is how often a process folds the analytics
	// deltas it wrote into the rollups (ANALYTICS_FOLD_INTERVAL).
	AnalyticsFoldInterval time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers (HTTP_READ_HEADER_TIMEOUT): a slow-header client
	// (slowloris) holds a connection at most this long.
	ReadHeaderTimeout time.Duration
	DBMaxConns        int
	AuthCacheTTL      time.Duration // 0: no cache
	LogLevel          string
	Webhooks          webhooks.Config
	RateLimitsEnabled bool           // RATE_LIMITS_ENABLED; false for load tests
	TrustedProxies    []netip.Prefix // TRUSTED_PROXIES: peers whose X-Forwarded-For is believed
	// GraphQLIntrospection serves the schema to clients (GRAPHQL_INTROSPECTION).
	GraphQLIntrospection bool
	// CORSAllowedOrigins may call /graphql from browsers (CORS_ALLOWED_ORIGINS).
	CORSAllowedOrigins []string
}

// Roles a process can take.
const (
	RoleAll    = "all"
	RoleAPI    = "api"
	RoleWorker = "worker"
)

// LoadConfig reads the environment through getenv. Every variable has a
// default that works on a developer machine; an invalid value is an error
// naming the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DatabaseURL:   env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/csat?sslmode=disable"),
		RedisURL:      env("REDIS_URL", "redis://127.0.0.1:6379/0"),
		HTTPAddr:      env("HTTP_ADDR", ":8080"),
		PublicBaseURL: strings.TrimRight(env("PUBLIC_BASE_URL", "http://localhost:8080"), "/"),
		SMTPURL:       env("SMTP_URL", ""),
		MailFrom:      env("MAIL_FROM", "CSAT Surveys <surveys@localhost>"),
		OpsToken:      env("OPS_TOKEN", ""),
		Role:          env("CSAT_ROLE", RoleAll),
		LogLevel:      env("LOG_LEVEL", "info"),
	}
	c.AppDatabaseURL = env("APP_DATABASE_URL", db.AppDSN(c.DatabaseURL))
	var err error
	bad := func(name string, e error) error { return fmt.Errorf("invalid %s: %w", name, e) }
	if c.ReconcileInterval, err = duration(env("CSAT_RECONCILE_INTERVAL", "1m")); err != nil {
		return c, bad("CSAT_RECONCILE_INTERVAL", err)
	}
	if c.ShutdownTimeout, err = duration(env("SHUTDOWN_TIMEOUT", "25s")); err != nil {
		return c, bad("SHUTDOWN_TIMEOUT", err)
	}
	if c.SendClaimLease, err = duration(env("SEND_CLAIM_LEASE", "30s")); err != nil || c.SendClaimLease < 5*time.Second {
		return c, bad("SEND_CLAIM_LEASE", errors.Join(err, errors.New("want at least 5s")))
	}
	if c.SendAsyncHandoff, err = strconv.ParseBool(env("SEND_ASYNC_HANDOFF", "false")); err != nil {
		return c, bad("SEND_ASYNC_HANDOFF", fmt.Errorf("want true or false"))
	}
	if c.SendHandoffGroup, err = positive(env("SEND_HANDOFF_GROUP", strconv.Itoa(survey.DefaultHandoffGroup))); err != nil || c.SendHandoffGroup > survey.SendBatch {
		return c, bad("SEND_HANDOFF_GROUP", errors.Join(err, fmt.Errorf("want 1 to %d", survey.SendBatch)))
	}
	if c.AnalyticsFoldInterval, err = duration(env("ANALYTICS_FOLD_INTERVAL", survey.DefaultFoldInterval.String())); err != nil || c.AnalyticsFoldInterval < 10*time.Millisecond {
		return c, bad("ANALYTICS_FOLD_INTERVAL", errors.Join(err, errors.New("want at least 10ms")))
	}
	if c.ReadHeaderTimeout, err = duration(env("HTTP_READ_HEADER_TIMEOUT", "10s")); err != nil {
		return c, bad("HTTP_READ_HEADER_TIMEOUT", err)
	}
	if c.AutoMigrate, err = strconv.ParseBool(env("CSAT_AUTO_MIGRATE", "true")); err != nil {
		return c, bad("CSAT_AUTO_MIGRATE", fmt.Errorf("want true or false"))
	}
	if c.AsynqmonReadOnly, err = strconv.ParseBool(env("ASYNQMON_READONLY", "false")); err != nil {
		return c, bad("ASYNQMON_READONLY", fmt.Errorf("want true or false"))
	}
	if c.GraphQLIntrospection, err = strconv.ParseBool(env("GRAPHQL_INTROSPECTION", "true")); err != nil {
		return c, bad("GRAPHQL_INTROSPECTION", fmt.Errorf("want true or false"))
	}
	if c.CORSAllowedOrigins, err = origins(env("CORS_ALLOWED_ORIGINS", "")); err != nil {
		return c, bad("CORS_ALLOWED_ORIGINS", err)
	}
	if c.WorkerConcurrency, err = positive(env("WORKER_CONCURRENCY", "20")); err != nil {
		return c, bad("WORKER_CONCURRENCY", err)
	}
	if v := env("AUTH_CACHE_TTL", "5s"); v != "0" {
		if c.AuthCacheTTL, err = duration(v); err != nil {
			return c, bad("AUTH_CACHE_TTL", err)
		}
	}
	if c.DBMaxConns, err = positive(env("DB_MAX_CONNS", "40")); err != nil {
		return c, bad("DB_MAX_CONNS", err)
	}
	if c.RateLimitsEnabled, err = strconv.ParseBool(env("RATE_LIMITS_ENABLED", "true")); err != nil {
		return c, bad("RATE_LIMITS_ENABLED", fmt.Errorf("want true or false"))
	}
	if c.TrustedProxies, err = ratelimit.ParsePrefixes(env("TRUSTED_PROXIES", "")); err != nil {
		return c, bad("TRUSTED_PROXIES", err)
	}
	if err := checkURL(c.DatabaseURL, "postgres", "postgresql"); err != nil {
		return c, bad("DATABASE_URL", err)
	}
	if err := checkURL(c.AppDatabaseURL, "postgres", "postgresql"); err != nil {
		return c, bad("APP_DATABASE_URL", err)
	}
	if err := checkURL(c.RedisURL, "redis", "rediss", "redis-sentinel"); err != nil {
		return c, bad("REDIS_URL", err)
	}
	if err := checkURL(c.PublicBaseURL, "http", "https"); err != nil {
		return c, bad("PUBLIC_BASE_URL", err)
	}
	if c.SMTPURL != "" {
		if err := checkURL(c.SMTPURL, "smtp", "smtps"); err != nil {
			return c, bad("SMTP_URL", err)
		}
	}
	if c.Webhooks, err = webhooks.LoadConfig(getenv); err != nil {
		return c, err
	}
	switch c.Role {
	case RoleAll, RoleAPI, RoleWorker:
	default:
		return c, bad("CSAT_ROLE", fmt.Errorf("%q: want all, api or worker", c.Role))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, bad("LOG_LEVEL", fmt.Errorf("%q: want debug, info, warn or error", c.LogLevel))
	}
	return c, nil
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration like 30s or 1m", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q must be a positive integer", s)
	}
	return n, nil
}

func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	for _, sc := range schemes {
		if u.Scheme == sc && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("want a %s:// URL with a host", schemes[0])
}

// origins parses a comma-separated list of browser origins like
// https://dash.example.com (scheme and host, no path).
func origins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("%q: want origins like https://dash.example.com", o)
		}
		out = append(out, o)
	}
	return out, nil
}
