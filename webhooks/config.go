// Package webhooks delivers csat.* events to the URLs tenants subscribe:
// endpoints, an events outbox written in the same transaction as the change
// (survey.EventSink), signed deliveries on asynq with retries, and an
// HTTP client that refuses private addresses (SSRF).
package webhooks

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config tunes webhooks; LoadConfig reads it from the environment.
type Config struct {
	// SecretKey seals signing secrets at rest (WEBHOOK_SECRET_KEY, at least
	// 32 characters; its SHA-256 is the AES-256 key). Empty: a fixed
	// development key, with a warning at start-up.
	SecretKey string
	// AllowPrivate lets endpoints point at loopback, private and link-local
	// addresses (WEBHOOK_ALLOW_PRIVATE; tests and local development).
	AllowPrivate bool
	// RetryBase is the first retry delay; each next one doubles, with
	// jitter (WEBHOOK_RETRY_BASE).
	RetryBase time.Duration
	// RetryWindow is how long a delivery is retried before it is marked
	// failed (WEBHOOK_RETRY_WINDOW).
	RetryWindow time.Duration
	// DisableAfter disables an endpoint that has failed for this long
	// without a success (WEBHOOK_DISABLE_AFTER).
	DisableAfter time.Duration
	// Timeout bounds one delivery attempt: a 2xx within it is success.
	Timeout time.Duration
}

// Defaults.
const (
	DefaultRetryBase    = 30 * time.Second
	DefaultRetryWindow  = 24 * time.Hour
	DefaultDisableAfter = 72 * time.Hour
	DefaultTimeout      = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryWindow <= 0 {
		c.RetryWindow = DefaultRetryWindow
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = DefaultDisableAfter
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// LoadConfig reads the WEBHOOK_* variables through getenv; an invalid
// value is an error naming the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	c := Config{SecretKey: env("WEBHOOK_SECRET_KEY")}
	if c.SecretKey != "" && len(c.SecretKey) < 32 {
		return c, fmt.Errorf("invalid WEBHOOK_SECRET_KEY: must be at least 32 characters (openssl rand -base64 32)")
	}
	if v := env("WEBHOOK_ALLOW_PRIVATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("invalid WEBHOOK_ALLOW_PRIVATE: want true or false")
		}
		c.AllowPrivate = b
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"WEBHOOK_RETRY_BASE", &c.RetryBase},
		{"WEBHOOK_RETRY_WINDOW", &c.RetryWindow},
		{"WEBHOOK_DISABLE_AFTER", &c.DisableAfter},
	} {
		v := env(d.name)
		if v == "" {
			continue
		}
		x, err := time.ParseDuration(v)
		if err != nil || x <= 0 {
			return c, fmt.Errorf("invalid %s: %q is not a positive Go duration like 30s or 24h", d.name, v)
		}
		*d.dst = x
	}
	return c.withDefaults(), nil
}
