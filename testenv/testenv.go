// Package testenv gives tests the real parts: a fresh migrated Postgres
// database, a Redis database number of their own, an in-process SMTP server
// and a running service.
package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// AdminDSN is the maintenance database tests create their databases from.
func AdminDSN() string {
	return env("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// DB creates a fresh database, applies the migrations (as the owner, like
// production) and drops it when the test ends. It returns the owner's DSN
// (what DATABASE_URL holds; the service derives its csat_app DSN from it)
// and a connection as the app role, where row-level security applies as in
// production: bind a tenant with db.WithTenant to see its rows, or use
// Admin for fixtures and assertions across tenants.
func DB(tb testing.TB) (string, *bun.DB) {
	tb.Helper()
	ctx := context.Background()
	admin, err := db.Open(AdminDSN(), 2)
	if err != nil {
		tb.Fatalf("open admin db: %v", err)
	}
	name := secret.ID("csat_test_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(name)); err != nil {
		admin.Close()
		tb.Fatalf("create test database: %v", err)
	}
	u, _ := url.Parse(AdminDSN())
	u.Path = "/" + name
	dsn := u.String()
	tb.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name))
		admin.Close()
	})
	owner := Admin(tb, dsn)
	if err := db.Migrate(ctx, owner); err != nil {
		tb.Fatalf("migrate test db: %v", err)
	}
	bdb, err := db.Open(db.AppDSN(dsn), 20)
	if err != nil {
		tb.Fatalf("open test db as %s: %v", db.AppRole, err)
	}
	tb.Cleanup(func() { bdb.Close() })
	return dsn, bdb
}

// Admin connects to the test database dsn (from DB) as the maintenance
// user, a superuser that row-level security does not restrict: for
// fixtures ("make this survey overdue") and assertions across tenants,
// never for the code under test.
func Admin(tb testing.TB, dsn string) *bun.DB {
	tb.Helper()
	bdb, err := db.Open(dsn, 4)
	if err != nil {
		tb.Fatalf("open admin connection: %v", err)
	}
	tb.Cleanup(func() { bdb.Close() })
	return bdb
}

// Redis returns the URL of Redis database number n (each test package
// uses its own) after flushing it, and a client for it.
func Redis(tb testing.TB, n int) (string, *redis.Client) {
	tb.Helper()
	url, rdb := RedisNoFlush(tb, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		tb.Fatalf("flush redis db %d: %v", n, err)
	}
	return url, rdb
}

// RedisNoFlush is Redis without the flush, for a second process sharing it.
func RedisNoFlush(tb testing.TB, n int) (string, *redis.Client) {
	tb.Helper()
	addr := env("TEST_REDIS_ADDR", "127.0.0.1:6379")
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: n})
	tb.Cleanup(func() { rdb.Close() })
	return fmt.Sprintf("redis://%s/%d", addr, n), rdb
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
