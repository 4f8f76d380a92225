package db_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
)

// newTenant stores a tenant through the superuser connection and returns
// its id.
func newTenant(t *testing.T, admin *bun.DB, name string) string {
	t.Helper()
	tn := &db.Tenant{ID: secret.ID("ten_"), Name: name}
	if err := db.InsertTenant(context.Background(), admin, tn); err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

// explain returns the plan of query (an EXPLAIN ...) on conn, one line
// after another.
func explain(t *testing.T, conn interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
