package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/csat/csat/secret"
	"github.com/csat/csat/testenv"
)

func TestCommands(t *testing.T) {
	dsn, _ := testenv.DB(t)
	bdb := testenv.Admin(t, dsn) // checks what is stored, across tenants
	env := map[string]string{"DATABASE_URL": dsn}
	getenv := func(k string) string { return env[k] }
	run1 := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	if out, _, err := run1("migrate"); err != nil || !strings.Contains(out, "migrated") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	out, _, err := run1("tenant", "create", "--name", "Acme Support")
	if err != nil {
		t.Fatalf("tenant create: %v", err)
	}
	var tenant struct{ ID, Name string }
	if err := json.Unmarshal([]byte(out), &tenant); err != nil || !strings.HasPrefix(tenant.ID, "ten_") || tenant.Name != "Acme Support" {
		t.Fatalf("tenant create printed %q (%v)", out, err)
	}
	out, _, err = run1("apikey", "create", "--tenant", tenant.ID, "--scopes", "csat:read,config:write")
	if err != nil {
		t.Fatalf("apikey create: %v", err)
	}
	var key struct {
		ID     string
		Key    string
		Scopes []string
	}
	if err := json.Unmarshal([]byte(out), &key); err != nil || !strings.HasPrefix(key.Key, "ak_live_") || len(key.Key) < len("ak_live_")+32 ||
		strings.Join(key.Scopes, ",") != "csat:read,config:write" {
		t.Fatalf("apikey create printed %q (%v)", out, err)
	}
	// Only the hash is stored.
	var stored []byte
	if err := bdb.NewRaw("SELECT key_hash FROM api_keys WHERE id = ?", key.ID).Scan(context.Background(), &stored); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, secret.Hash(key.Key)) {
		t.Fatal("stored key hash does not match the key")
	}
	var n int
	if err := bdb.NewRaw("SELECT count(*) FROM api_keys WHERE prefix = ? OR encode(key_hash, 'escape') LIKE ?", key.Key, "%"+key.Key[8:]+"%").Scan(context.Background(), &n); err != nil || n != 0 {
		t.Fatalf("plaintext key found in api_keys (%d, %v)", n, err)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "a command is required"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"tenant without name", []string{"tenant", "create"}, "--name is required"},
		{"key without tenant", []string{"apikey", "create"}, "--tenant is required"},
		{"key for unknown tenant", []string{"apikey", "create", "--tenant", "ten_nope"}, "not found"},
		{"unknown scope", []string{"apikey", "create", "--tenant", tenant.ID, "--scopes", "csat:admin"}, "unknown scope"},
		{"bad flag", []string{"tenant", "create", "--nmae", "x"}, "not defined"},
	} {
		_, _, err := run1(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"migrate", "--help"}, {"tenant", "create", "--help"}, {"apikey", "create", "--help"}} {
		out, errOut, err := run1(args...)
		if err == nil || !strings.Contains(err.Error(), "help") || !strings.Contains(out+errOut, "Usage") {
			t.Errorf("%v: err %v, output %q", args, err, out+errOut)
		}
	}
	env["CSAT_RECONCILE_INTERVAL"] = "often"
	if _, _, err := run1("serve"); err == nil || !strings.Contains(err.Error(), "CSAT_RECONCILE_INTERVAL") {
		t.Errorf("invalid env: %v", err)
	}
}
