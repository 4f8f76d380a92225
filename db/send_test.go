package db_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/testenv"
)

// queryLog keeps the statements run through a bun.DB.
type queryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (l *queryLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, e.Query)
}

// lastUpdate is the last UPDATE statement run.
func (l *queryLog) lastUpdate() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.queries) - 1; i >= 0; i-- {
		if strings.HasPrefix(l.queries[i], "UPDATE") {
			return l.queries[i]
		}
	}
	return ""
}

// TestSendBatchesFindSurveysByKey: the send's batch updates (claim,
// handoff, release, end) find their 50 surveys, and a single email's
// handoff its survey, by primary key whatever the statistics say. A
// wave's tenant is all pending while the table's statistics, with millions
// of rows of other tenants and statuses, put its pending surveys at a
// handful (tenant and status taken as independent): joined with the ids,
// the planner walked the tenant's whole pending range for each batch (1M
// surveys, a wave of 10,000: 10,000 rows and ~3,600 buffers per batch,
// 9.6 ms instead of 1.3).
func TestSendBatchesFindSurveysByKey(t *testing.T) {
	dsn, appDB := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	tenantID, other := newTenant(t, admin, "Wave"), newTenant(t, admin, "Other")
	// A tenant with 50,000 answered surveys, and a wave of 2,000 pending
	// ones: the statistics are fresh, but tenant and status taken apart put
	// the wave's pending surveys at 2,000 x 2,000 / 52,000, about 77.
	for _, rows := range []struct {
		tenant, prefix, status string
		n                      int
	}{{other, "csat_o", "completed", 50000}, {tenantID, "csat_w", "pending", 2000}} {
		if _, err := admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for)
			SELECT ?, ? || lpad(i::text, 5, '0'), 'c' || i, 'w@example.com', ?, now(), now() - interval '1 hour'
			FROM generate_series(1, ?) i`, rows.tenant, rows.prefix, rows.status, rows.n).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.ExecContext(ctx, "ANALYZE surveys"); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 50)
	hashes := make([][]byte, 50)
	sent := make([]string, 50)
	for i := range ids {
		ids[i], hashes[i], sent[i] = fmt.Sprintf("csat_w%05d", 40*i+1), secret.Hash(fmt.Sprint(i)), db.StatusSent
	}
	log := &queryLog{}
	logged := appDB.WithQueryHook(log)
	bound := db.WithTenant(ctx, tenantID)
	for _, st := range []struct {
		name string
		run  func(bun.Tx) error
	}{
		{"claim", func(tx bun.Tx) error { return db.Claim(bound, tx, tenantID, ids, hashes, time.Now()) }},
		{"handoff", func(tx bun.Tx) error {
			_, err := db.Handoff(bound, tx, tenantID, ids, hashes, hashes, time.Now(), time.Now())
			return err
		}},
		{"release", func(tx bun.Tx) error { return db.ReleaseClaims(bound, tx, tenantID, ids, hashes) }},
		{"end", func(tx bun.Tx) error { _, err := db.EndPending(bound, tx, tenantID, ids, sent, time.Now()); return err }},
	} {
		if err := logged.RunInTx(bound, nil, func(_ context.Context, tx bun.Tx) error { return st.run(tx) }); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var lines []string
		if err := admin.NewRaw("EXPLAIN "+log.lastUpdate()).Scan(ctx, &lines); err != nil {
			t.Fatalf("%s: explain: %v", st.name, err)
		}
		// Keyed: each value's survey looked up by its id, inside a nested
		// loop over the values; not a scan of the tenant's range.
		all := strings.Join(lines, "\n")
		if !strings.Contains(all, "Nested Loop") || !strings.Contains(all, "(id = v.id)") {
			t.Errorf("%s does not look its surveys up by key:\n%s", st.name, all)
		}
	}
	// A single email's handoff is prepared: its custom and its generic
	// plan both find the survey by key.
	conn, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, db.HandoffOnePrepare); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		all := explain(t, conn, "EXPLAIN EXECUTE csat_handoff_one(?, ?, now(), now(), ?, ?, 'pending')",
			tenantID, ids[0], hashes[0], hashes[0])
		// By key: the id in the index condition (the primary key, or the
		// status index with tenant, status and id), not a filter on a walk.
		if !regexp.MustCompile(`Index Cond: .*\(id = `).MatchString(all) {
			t.Errorf("the handoff of one (%s) does not look its survey up by key:\n%s", mode, all)
		}
	}
}

// TestHandoffRecordsOnlyOurClaims: a group's handoff records the surveys
// still claimed with our token and not yet handed, and returns them;
// ReleaseClaims in the same transaction takes one back before the commit
// (a group member whose final "." was not written).
func TestHandoffRecordsOnlyOurClaims(t *testing.T) {
	appDB, admin, tenantID, ids, hashes := seedHandoffs(t)
	ctx := context.Background()
	bound := db.WithTenant(ctx, tenantID)
	at := time.Now().UTC().Truncate(time.Microsecond)
	var recorded []string
	err := appDB.RunInTx(bound, nil, func(_ context.Context, tx bun.Tx) (err error) {
		if recorded, err = db.Handoff(bound, tx, tenantID, ids, hashes, hashes, at, at.Add(time.Hour)); err != nil {
			return err
		}
		return db.ReleaseClaims(bound, tx, tenantID, []string{"csat_b"}, [][]byte{secret.Hash("ours csat_b")})
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recorded, ",") != "csat_a,csat_b" && strings.Join(recorded, ",") != "csat_b,csat_a" {
		t.Fatalf("recorded %v, want csat_a and csat_b", recorded)
	}
	for _, id := range ids {
		sv, err := db.GetSurvey(ctx, admin, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		handed := sv.HandedAt != nil && sv.HandedAt.Equal(at)
		if want := id == "csat_a"; handed != want {
			t.Errorf("%s: handed at %v, want ours: %v", id, sv.HandedAt, want)
		}
	}
}

// TestHandoffOfOneRecordsOnlyOurClaim: the handoff of a single email (its
// own prepared statement) follows the same rules as a group's.
func TestHandoffOfOneRecordsOnlyOurClaim(t *testing.T) {
	appDB, admin, tenantID, ids, hashes := seedHandoffs(t)
	bound := db.WithTenant(context.Background(), tenantID)
	at := time.Now().UTC().Truncate(time.Microsecond)
	for i, id := range ids {
		var recorded []string
		err := appDB.RunInTx(bound, nil, func(_ context.Context, tx bun.Tx) (err error) {
			recorded, err = db.Handoff(bound, tx, tenantID, ids[i:i+1], hashes[i:i+1], hashes[i:i+1], at, at.Add(time.Hour))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ours := id == "csat_a" || id == "csat_b"
		if got := len(recorded) == 1 && recorded[0] == id; got != ours || len(recorded) > 1 {
			t.Errorf("%s: recorded %v, want it recorded: %v", id, recorded, ours)
		}
		sv, err := db.GetSurvey(context.Background(), admin, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		if handed := sv.HandedAt != nil && sv.HandedAt.Equal(at); handed != ours {
			t.Errorf("%s: handed at %v, want ours: %v", id, sv.HandedAt, ours)
		}
		if ours && !bytes.Equal(sv.UnsubHash, hashes[i]) {
			t.Errorf("%s: unsubscribe hash not recorded", id)
		}
	}
}

// seedHandoffs stores five claimed surveys of a new tenant: ours twice
// (csat_a, csat_b), re-claimed by another worker (csat_c), expired
// meanwhile (csat_d) and handed already (csat_e), with the token hashes of
// our claims.
func seedHandoffs(t *testing.T) (appDB, admin *bun.DB, tenantID string, ids []string, hashes [][]byte) {
	t.Helper()
	dsn, appDB := testenv.DB(t)
	admin = testenv.Admin(t, dsn)
	ctx := context.Background()
	tenantID = newTenant(t, admin, "Handoff")
	rows := []struct {
		id, status string
		theirs     bool
		handed     bool
	}{{"csat_a", "pending", false, false}, {"csat_b", "pending", false, false}, {"csat_c", "pending", true, false},
		{"csat_d", "expired", false, false}, {"csat_e", "pending", false, true}}
	ids = make([]string, len(rows))
	hashes = make([][]byte, len(rows))
	for i, r := range rows {
		ids[i], hashes[i] = r.id, secret.Hash("ours "+r.id)
		stored := hashes[i]
		if r.theirs {
			stored = secret.Hash("theirs")
		}
		if _, err := admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for, token_hash, claimed_at, handed_at)
			VALUES (?, ?, ?, 'x@example.com', ?, now(), now(), ?, now(), CASE WHEN ? THEN now() END)`,
			tenantID, r.id, r.id, r.status, stored, r.handed).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return appDB, admin, tenantID, ids, hashes
}
