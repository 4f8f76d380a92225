package db_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/testenv"
)

// globalTables have no tenant_id on purpose; every other table must carry
// tenant_id and the tenant wall. Adding a name here needs a reason.
var globalTables = map[string]string{
	"tenants":             "ids and display names; listed by the sweep and tenant creation",
	"bun_migrations":      "the owner's migration bookkeeping; csat_app has no grant",
	"bun_migration_locks": "the owner's migration bookkeeping; csat_app has no grant",
}

// TestEveryTenantTableHasRLS fails when a migration adds a table with a
// tenant_id column but without SELECT csat_protect_tenant_table('t'), or a
// table without tenant_id that is not deliberately global.
func TestEveryTenantTableHasRLS(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	var tables []struct {
		Name      string `bun:"name"`
		HasTenant bool   `bun:"has_tenant"`
		RLS       bool   `bun:"rls"`
		Force     bool   `bun:"force"`
		Policy    bool   `bun:"policy"`
		AppGrant  bool   `bun:"app_grant"`
	}
	err := admin.NewRaw(`
		SELECT c.relname AS name,
			EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant,
			c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
			EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname
				AND p.cmd = 'ALL' AND p.permissive = 'PERMISSIVE'
				AND p.qual = '(tenant_id = current_setting(''app.tenant_id''::text, true))'
				AND p.with_check = p.qual) AS policy,
			has_table_privilege(?, c.oid, 'SELECT') AS app_grant
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		ORDER BY 1`, db.AppRole).Scan(ctx, &tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 5 {
		t.Fatalf("found only %d tables: %+v", len(tables), tables)
	}
	for _, tb := range tables {
		if !tb.HasTenant {
			if _, ok := globalTables[tb.Name]; !ok {
				t.Errorf("table %s has no tenant_id: every table of tenant data carries it (add it, or list the table in globalTables with a reason)", tb.Name)
			}
			continue
		}
		if !tb.RLS || !tb.Force || !tb.Policy {
			t.Errorf("table %s has tenant_id but no tenant wall (rls=%v force=%v policy=%v): add SELECT csat_protect_tenant_table('%s'); to its migration",
				tb.Name, tb.RLS, tb.Force, tb.Policy, tb.Name)
		}
		if !tb.AppGrant {
			t.Errorf("table %s: %s cannot read it", tb.Name, db.AppRole)
		}
	}
}

// TestAppRoleCannotBypassRLS checks the service's role: no superuser, no
// BYPASSRLS, owns nothing, cannot switch the wall off or become the owner.
func TestAppRoleCannotBypassRLS(t *testing.T) {
	_, app := testenv.DB(t)
	ctx := context.Background()
	role, bypass, err := db.BypassesRLS(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if role != db.AppRole || bypass {
		t.Fatalf("connected as %q bypass=%v, want %s without bypass", role, bypass, db.AppRole)
	}
	var owned int
	if err := app.NewRaw(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user`).Scan(ctx, &owned); err != nil {
		t.Fatal(err)
	}
	if owned != 0 {
		t.Errorf("%s owns %d relations", db.AppRole, owned)
	}
	for _, stmt := range []string{
		"ALTER TABLE surveys DISABLE ROW LEVEL SECURITY",
		"ALTER TABLE surveys NO FORCE ROW LEVEL SECURITY",
		"DROP POLICY tenant_isolation ON surveys",
		"SET ROLE postgres",
		"SET row_security = off; SELECT count(*) FROM surveys",
		"SELECT * FROM bun_migrations",
	} {
		if _, err := app.ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s as %s succeeded", stmt, db.AppRole)
		}
	}
}

type twoTenants struct {
	A, B         string
	SurveyA      db.Survey
	SurveyB      db.Survey
	KeyA, KeyB   []byte // hashes
	admin, app   *bun.DB
	dsn          string // the owner's
	ctxA, ctxB   context.Context
	unboundCtx   context.Context
	tenantTables []string
}

// seedTwoTenants stores a tenant, config, key and survey (clicked once) for A and B
// through the superuser connection.
func seedTwoTenants(t *testing.T) *twoTenants {
	t.Helper()
	dsn, app := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	f := &twoTenants{admin: admin, app: app, dsn: dsn, unboundCtx: ctx,
		tenantTables: []string{"api_keys", "csat_configs", "surveys", "survey_stats_hourly", "survey_stat_deltas", "survey_stat_folds"}}
	now := time.Now().UTC().Truncate(time.Microsecond) // as stored
	seed := func(name string) (string, db.Survey, []byte) {
		tenantID := newTenant(t, admin, name)
		hash := secret.Hash(secret.Token(24))
		if err := db.InsertAPIKey(ctx, admin, &db.APIKey{TenantID: tenantID, ID: secret.ID("key_"), Prefix: "ak_live_xxxx",
			KeyHash: hash, Scopes: []string{"csat:read"}}); err != nil {
			t.Fatal(err)
		}
		epoch := time.Unix(0, 0).UTC()
		sv := db.Survey{TenantID: tenantID, ID: secret.ID("csat_"), ConversationID: "conv-" + name,
			ContactEmail: name + "@example.com", Status: db.StatusSent, ResolvedAt: now, ScheduledFor: now,
			SentAt: &now, TokenHash: secret.Hash(name), CreatedAt: now, UpdatedAt: now,
			LastClicks: []time.Time{epoch, epoch, epoch, epoch, now}} // one click: rating 5
		if _, err := db.InsertSurvey(ctx, admin, &sv); err != nil {
			t.Fatal(err)
		}
		// The sent survey is folded into the rollups; its rating waits in
		// the deltas.
		if _, err := db.FoldStats(db.WithTenant(ctx, tenantID), app, tenantID); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.NewRaw("UPDATE surveys SET rating = 5 WHERE tenant_id = ? AND id = ?", tenantID, sv.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return tenantID, sv, hash
	}
	f.A, f.SurveyA, f.KeyA = seed("a")
	f.B, f.SurveyB, f.KeyB = seed("b")
	f.ctxA, f.ctxB = db.WithTenant(ctx, f.A), db.WithTenant(ctx, f.B)
	return f
}

func count(t *testing.T, ctx context.Context, idb bun.IDB, table string) int {
	t.Helper()
	var n int
	if err := idb.NewRaw("SELECT count(*) FROM ?", bun.Ident(table)).Scan(ctx, &n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestForgottenTenantFilterReturnsNothing is the point of the wall: a query
// without a tenant filter sees no rows unbound and only the bound tenant's
// rows when bound; writes to another tenant's rows change nothing.
func TestForgottenTenantFilterReturnsNothing(t *testing.T) {
	f := seedTwoTenants(t)
	for _, table := range f.tenantTables {
		var ofA, all int
		if err := f.admin.NewRaw("SELECT count(*) FILTER (WHERE tenant_id = ?), count(*) FROM ?", f.A, bun.Ident(table)).
			Scan(f.unboundCtx, &ofA, &all); err != nil {
			t.Fatal(err)
		}
		if ofA == 0 || all == ofA {
			t.Fatalf("%s: fixture has %d rows of A among %d", table, ofA, all)
		}
		if n := count(t, f.unboundCtx, f.app, table); n != 0 {
			t.Errorf("unbound app sees %d rows of %s, want 0", n, table)
		}
		if n := count(t, f.ctxA, f.app, table); n != ofA {
			t.Errorf("app bound to A sees %d rows of %s, want A's %d", n, table, ofA)
		}
		var foreign int
		if err := f.app.NewRaw("SELECT count(*) FROM ? WHERE tenant_id = ?", bun.Ident(table), f.B).Scan(f.ctxA, &foreign); err != nil {
			t.Fatal(err)
		}
		if foreign != 0 {
			t.Errorf("app bound to A counts %d of B's %s rows", foreign, table)
		}
	}
	// Updates and deletes of B's rows while bound to A touch nothing.
	res, err := f.app.NewRaw("UPDATE surveys SET status = 'expired' WHERE id = ?", f.SurveyB.ID).Exec(f.ctxA)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 0 {
		t.Errorf("A updated %d of B's surveys", n)
	}
	var deltasB int
	if err := f.admin.NewRaw("SELECT count(*) FROM survey_stat_deltas WHERE tenant_id = ?", f.B).Scan(f.unboundCtx, &deltasB); err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.NewRaw("DELETE FROM survey_stat_deltas").Exec(f.ctxA); err != nil {
		t.Fatal(err)
	}
	if n := count(t, f.unboundCtx, f.admin, "survey_stat_deltas"); deltasB == 0 || n != deltasB {
		t.Errorf("after A deleted all it sees, %d deltas remain, want B's %d", n, deltasB)
	}
	// Writing a row for B while bound to A violates the policy.
	sv := f.SurveyB
	sv.ID, sv.ConversationID = secret.ID("csat_"), "conv-smuggled"
	if _, err := db.InsertSurvey(f.ctxA, f.app, &sv); err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("inserting B's survey while bound to A: err = %v, want a row-level security violation", err)
	}
	// Moving A's row to B is refused too.
	if _, err := f.app.NewRaw("UPDATE surveys SET tenant_id = ? WHERE id = ?", f.B, f.SurveyA.ID).Exec(f.ctxA); err == nil {
		t.Error("moving A's survey to B succeeded")
	}
}

// TestBindingEndsWithItsStatement checks that SET LOCAL does not outlive
// its statement (or explicit transaction) on a pooled connection.
func TestBindingEndsWithItsStatement(t *testing.T) {
	f := seedTwoTenants(t)
	f.app.SetMaxOpenConns(1) // every statement below shares one connection
	if n := count(t, f.ctxA, f.app, "surveys"); n != 1 {
		t.Fatalf("bound count = %d", n)
	}
	if n := count(t, f.unboundCtx, f.app, "surveys"); n != 0 {
		t.Errorf("after a bound statement an unbound one sees %d surveys", n)
	}
	err := f.app.RunInTx(f.ctxB, nil, func(ctx context.Context, tx bun.Tx) error {
		if n := count(t, ctx, tx, "surveys"); n != 1 {
			t.Errorf("in tx bound to B: %d surveys", n)
		}
		// A statement of the same transaction without the binding still
		// sees B: SET LOCAL lasts until COMMIT.
		if n := count(t, context.Background(), tx, "surveys"); n != 1 {
			t.Errorf("unbound statement in B's tx: %d surveys", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, f.unboundCtx, f.app, "surveys"); n != 0 {
		t.Errorf("after B's transaction an unbound statement sees %d surveys", n)
	}
}

// TestAPIKeyLookupSeesOnlyItsRow: authentication by hash finds the key's
// row and nothing else of any tenant.
func TestAPIKeyLookupSeesOnlyItsRow(t *testing.T) {
	f := seedTwoTenants(t)
	k, err := db.FindAPIKeyByHash(f.unboundCtx, f.app, f.KeyB)
	if err != nil {
		t.Fatal(err)
	}
	if k.TenantID != f.B {
		t.Fatalf("key of %s, want %s", k.TenantID, f.B)
	}
	if _, err := db.FindAPIKeyByHash(f.unboundCtx, f.app, secret.Hash("ak_live_unknown")); err == nil {
		t.Error("unknown hash found a key")
	}
	if err := db.TouchAPIKey(f.unboundCtx, f.app, f.B, k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	var touched bool
	if err := f.admin.NewRaw("SELECT last_used_at IS NOT NULL FROM api_keys WHERE id = ?", k.ID).Scan(f.unboundCtx, &touched); err != nil {
		t.Fatal(err)
	}
	if !touched {
		t.Error("TouchAPIKey did not record the use")
	}
}

// TestUnsafeTenantIDIsRefused: a tenant id that would need quoting never
// reaches SQL.
func TestUnsafeTenantIDIsRefused(t *testing.T) {
	f := seedTwoTenants(t)
	for _, id := range []string{"ten_x'; DROP TABLE surveys; --", "ten_\\'", "ten_a b", strings.Repeat("a", 200)} {
		var n int
		err := f.app.NewRaw("SELECT count(*) FROM surveys").Scan(db.WithTenant(context.Background(), id), &n)
		if err == nil {
			t.Errorf("tenant id %q was bound", id)
		}
		if db.ValidTenantID(id) {
			t.Errorf("ValidTenantID(%q) = true", id)
		}
	}
	if !db.ValidTenantID(f.A) {
		t.Errorf("ValidTenantID(%q) = false", f.A)
	}
	if n := count(t, f.unboundCtx, f.admin, "surveys"); n != 2 {
		t.Errorf("surveys table has %d rows after the attempts", n)
	}
}

// BenchmarkRead compares reading one survey by id: as a superuser without
// RLS, as csat_app with the per-statement binding the service uses, and
// with the textbook transaction binding (BEGIN; set_config; query; COMMIT).
//
//	go test -run '^$' -bench Read -benchtime 2000x ./db/
func BenchmarkRead(b *testing.B) {
	dsn, app := testenv.DB(b)
	admin := testenv.Admin(b, dsn)
	ctx := context.Background()
	var ids []string
	var tenantsIDs []string
	now := time.Now().UTC()
	for range 20 {
		tn := &db.Tenant{ID: secret.ID("ten_"), Name: "t"}
		if err := db.InsertTenant(ctx, admin, tn); err != nil {
			b.Fatal(err)
		}
		for j := range 50 {
			sv := db.Survey{TenantID: tn.ID, ID: secret.ID("csat_"), ConversationID: secret.ID("c") + string(rune('a'+j%26)),
				ContactEmail: "x@example.com", Status: db.StatusPending, ResolvedAt: now, ScheduledFor: now, CreatedAt: now, UpdatedAt: now}
			if _, err := db.InsertSurvey(ctx, admin, &sv); err != nil {
				b.Fatal(err)
			}
			ids, tenantsIDs = append(ids, sv.ID), append(tenantsIDs, tn.ID)
		}
	}
	if _, err := admin.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	admin.SetMaxOpenConns(1)
	app.SetMaxOpenConns(1)
	get := func(b *testing.B, ctx context.Context, idb bun.IDB, i int) {
		sv, err := db.GetSurvey(ctx, idb, tenantsIDs[i%len(ids)], ids[i%len(ids)])
		if err != nil || sv.ID != ids[i%len(ids)] {
			b.Fatalf("get: %v", err)
		}
	}
	b.Run("no-rls-superuser", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			get(b, ctx, admin, i)
		}
	})
	b.Run("rls-statement-binding", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			get(b, db.WithTenant(ctx, tenantsIDs[i%len(ids)]), app, i)
		}
	})
	b.Run("rls-transaction-set_config", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			err := app.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, "SELECT set_config('app.tenant_id', ?, true)", tenantsIDs[i%len(ids)]); err != nil {
					return err
				}
				get(b, ctx, tx, i)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTextPostgresCannotTakeIsAClientError: a NUL byte or invalid UTF-8 in
// a value is a client error (Bun replaces invalid UTF-8; a NUL is refused
// before it reaches Postgres), never a 500.
func TestTextPostgresCannotTakeIsAClientError(t *testing.T) {
	f := seedTwoTenants(t)
	for _, id := range []string{"a\x00b", "\xff\xfe"} {
		_, err := db.GetSurvey(f.ctxA, f.app, f.A, id)
		if c := errs.CodeOf(err); c != errs.Invalid && c != errs.NotFound {
			t.Errorf("GetSurvey(%q): %v, want invalid_argument or not_found", id, err)
		}
	}
}

// TestAsyncCommitLastsOneTransaction: WithAsyncCommit turns off the WAL
// flush wait for the statements (and the transaction) it runs, and for
// nothing after them on the same pooled connection.
func TestAsyncCommitLastsOneTransaction(t *testing.T) {
	f := seedTwoTenants(t)
	f.app.SetMaxOpenConns(1) // every statement below shares one connection
	show := func(ctx context.Context, idb bun.IDB) string {
		t.Helper()
		var v string
		if err := idb.NewRaw("SHOW synchronous_commit").Scan(ctx, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	async := db.WithAsyncCommit(f.ctxA)
	if !db.AsyncCommit(async) || db.AsyncCommit(f.ctxA) {
		t.Fatal("AsyncCommit does not report WithAsyncCommit")
	}
	if v := show(f.ctxA, f.app); v != "on" {
		t.Fatalf("a bound statement: synchronous_commit = %s, want the server's on", v)
	}
	if v := show(async, f.app); v != "off" {
		t.Fatalf("an async statement: synchronous_commit = %s", v)
	}
	if v := show(f.unboundCtx, f.app); v != "on" {
		t.Errorf("after an async statement the next one has synchronous_commit = %s", v)
	}
	err := f.app.RunInTx(async, nil, func(ctx context.Context, tx bun.Tx) error {
		if v := show(ctx, tx); v != "off" {
			t.Errorf("in an async transaction: %s", v)
		}
		// SET LOCAL lasts until COMMIT, which is the one it governs.
		if v := show(f.ctxA, tx); v != "off" {
			t.Errorf("a later statement of the async transaction: %s", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := show(f.unboundCtx, f.app); v != "on" {
		t.Errorf("after the async transaction: synchronous_commit = %s", v)
	}
}
