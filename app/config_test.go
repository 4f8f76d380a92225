package app

import (
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://postgres@127.0.0.1:5432/csat?sslmode=disable" || c.RedisURL != "redis://127.0.0.1:6379/0" ||
		c.HTTPAddr != ":8080" || c.PublicBaseURL != "http://localhost:8080" || c.SMTPURL != "" ||
		c.ReconcileInterval != time.Minute || !c.AutoMigrate || c.Role != RoleAll || c.ShutdownTimeout != 25*time.Second ||
		c.ReadHeaderTimeout != 10*time.Second || c.AnalyticsFoldInterval != 250*time.Millisecond || c.SendAsyncHandoff ||
		c.SendHandoffGroup != 1 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"CSAT_RECONCILE_INTERVAL", "5"},
		{"CSAT_RECONCILE_INTERVAL", "-1m"},
		{"CSAT_AUTO_MIGRATE", "maybe"},
		{"DATABASE_URL", "mysql://x/y"},
		{"REDIS_URL", "127.0.0.1:6379"},
		{"PUBLIC_BASE_URL", "localhost:8080"},
		{"SMTP_URL", "mailpit:1025"},
		{"CSAT_ROLE", "boss"},
		{"WORKER_CONCURRENCY", "0"},
		{"SHUTDOWN_TIMEOUT", "soon"},
		{"HTTP_READ_HEADER_TIMEOUT", "0s"},
		{"ANALYTICS_FOLD_INTERVAL", "5ms"},
		{"ANALYTICS_FOLD_INTERVAL", "often"},
		{"SEND_CLAIM_LEASE", "1s"},
		{"SEND_ASYNC_HANDOFF", "always"},
		{"SEND_HANDOFF_GROUP", "0"},
		{"SEND_HANDOFF_GROUP", "51"},
		{"SEND_HANDOFF_GROUP", "many"},
		{"LOG_LEVEL", "loud"},
		{"GRAPHQL_INTROSPECTION", "perhaps"},
		{"CORS_ALLOWED_ORIGINS", "dash.example.com"},
		{"CORS_ALLOWED_ORIGINS", "https://dash.example.com/app"},
		{"CORS_ALLOWED_ORIGINS", "ftp://dash.example.com"},
	} {
		_, err := LoadConfig(func(k string) string {
			if k == c.name {
				return c.value
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q: error %v should name the variable", c.name, c.value, err)
		}
	}
}

func TestLoadConfigAsyncHandoff(t *testing.T) {
	c, err := LoadConfig(func(k string) string {
		if k == "SEND_ASYNC_HANDOFF" {
			return "true"
		}
		return ""
	})
	if err != nil || !c.SendAsyncHandoff {
		t.Fatalf("SEND_ASYNC_HANDOFF=true: %v %v", err, c.SendAsyncHandoff)
	}
}

func TestLoadConfigGraphQL(t *testing.T) {
	c, err := LoadConfig(func(string) string { return "" })
	if err != nil || !c.GraphQLIntrospection || len(c.CORSAllowedOrigins) != 0 {
		t.Fatalf("GraphQL defaults: %v %+v", err, c)
	}
	env := map[string]string{"GRAPHQL_INTROSPECTION": "false", "CORS_ALLOWED_ORIGINS": " https://a.example.com/, http://localhost:3000 ,"}
	c, err = LoadConfig(func(k string) string { return env[k] })
	if err != nil || c.GraphQLIntrospection || strings.Join(c.CORSAllowedOrigins, " ") != "https://a.example.com http://localhost:3000" {
		t.Fatalf("GraphQL settings: %v %v %q", err, c.GraphQLIntrospection, c.CORSAllowedOrigins)
	}
}
