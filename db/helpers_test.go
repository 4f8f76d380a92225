package db_test

import (
	"context"
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
