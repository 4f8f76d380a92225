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

// DB creates a fresh database, applies the migrations and drops it when
// the test ends. It returns the database's DSN and a connection.
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
	bdb, err := db.Open(dsn, 20)
	if err != nil {
		tb.Fatalf("open test db: %v", err)
	}
	tb.Cleanup(func() {
		bdb.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS ? WITH (FORCE)", bun.Ident(name))
		admin.Close()
	})
	if err := db.Migrate(ctx, bdb); err != nil {
		tb.Fatalf("migrate test db: %v", err)
	}
	return dsn, bdb
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
