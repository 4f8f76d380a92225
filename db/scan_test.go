package db_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/testenv"
)

// seedScanSurveys stores n surveys of one tenant whose optional columns
// are NULL, empty or set in turn, with odd text, and returns the tenant.
func seedScanSurveys(t testing.TB, admin *bun.DB, n int) string {
	t.Helper()
	ctx := context.Background()
	tn := &db.Tenant{ID: secret.ID("ten_"), Name: "scan"}
	if err := db.InsertTenant(ctx, admin, tn); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 7, 14, 0, 0, 123456000, time.UTC)
	odd := []string{"", "plain", `quote " back \ slash`, "<b>&amp;</b>", "ünïcødé ✓ \u2028", "tab\tnew\nline"}
	for i := range n {
		at := base.Add(time.Duration(i) * time.Hour)
		sv := db.Survey{TenantID: tn.ID, ID: secret.ID("csat_"), ConversationID: fmt.Sprintf("conv-%d %s", i, odd[i%len(odd)]),
			ContactEmail: fmt.Sprintf("c%d@example.com", i), ContactName: odd[(i+1)%len(odd)], AgentID: odd[(i+2)%len(odd)],
			TeamID: odd[(i+3)%len(odd)], Channel: odd[(i+4)%len(odd)], Locale: odd[(i+5)%len(odd)],
			Status:  []string{db.StatusPending, db.StatusSent, db.StatusCompleted, db.StatusExpired}[i%4],
			Flagged: i%3 == 0, TokenHash: secret.Hash(fmt.Sprint(i)), ResolvedAt: at, ScheduledFor: at.Add(time.Hour),
			CreatedAt: at, UpdatedAt: at.Add(time.Minute)}
		if i%2 == 0 {
			r, fb, sent := 1+i%5, odd[i%len(odd)], at.Add(2*time.Hour)
			sv.Rating, sv.Feedback, sv.SentAt, sv.RespondedAt, sv.ExpiresAt = &r, &fb, &sent, &sent, &sent
		}
		if _, err := db.InsertSurvey(ctx, admin, &sv); err != nil {
			t.Fatal(err)
		}
	}
	return tn.ID
}

// shown is s with only the columns lists read (db.ShownColumns).
func shown(s db.Survey) db.Survey {
	s.TokenHash, s.UnsubHash, s.ClaimedAt, s.HandedAt = nil, nil, nil, nil
	return s
}

// TestListScanMatchesBun: the lists' hand-written scan gives every shown
// column exactly as Bun's scan of the same row, NULLs included.
func TestListScanMatchesBun(t *testing.T) {
	dsn, app := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	tenantID := seedScanSurveys(t, admin, 30)
	ctx := db.WithTenant(context.Background(), tenantID)
	check := func(name string, got []db.Survey) {
		t.Helper()
		if len(got) == 0 {
			t.Fatalf("%s: no rows", name)
		}
		for _, g := range got {
			want, err := db.GetSurvey(ctx, app, tenantID, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, shown(*want)) {
				t.Errorf("%s: scanned\n%+v\nbun\n%+v", name, g, shown(*want))
			}
		}
	}
	page, total, err := db.ListSurveys(ctx, app, tenantID, db.SurveyFilter{}, 25, 0)
	if err != nil || total != 30 || len(page) != 25 {
		t.Fatalf("list: %d rows, total %d, %v", len(page), total, err)
	}
	check("list", page)
	// Not countable: the page, then a count of rows.
	page, total, err = db.ListSurveys(ctx, app, tenantID, db.SurveyFilter{Ratings: []int{1, 2, 3, 4, 5}}, 100, 0)
	if err != nil || total != 15 || len(page) != 15 {
		t.Fatalf("list rated: %d rows, total %d, %v", len(page), total, err)
	}
	check("list rated", page)
	page, _, err = db.PageSurveys(ctx, app, tenantID, db.SurveyFilter{}, db.Keyset{Sort: db.SortCreated, Desc: true, Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	check("page", page)
	// An empty page still has its total.
	page, total, err = db.ListSurveys(ctx, app, tenantID, db.SurveyFilter{}, 10, 30)
	if err != nil || total != 30 || len(page) != 0 {
		t.Fatalf("past the end: %d rows, total %d, %v", len(page), total, err)
	}
}

// TestPageReadsOnlyItsColumns: a page told its columns reads those, the id
// and the sort key, and leaves every other field zero.
func TestPageReadsOnlyItsColumns(t *testing.T) {
	dsn, app := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	tenantID := seedScanSurveys(t, admin, 6)
	ctx := db.WithTenant(context.Background(), tenantID)
	rows, _, err := db.PageSurveys(ctx, app, tenantID, db.SurveyFilter{},
		db.Keyset{Sort: db.SortSent, Desc: true, Limit: 10, Columns: []string{"status"}})
	if err != nil || len(rows) != 6 {
		t.Fatalf("page: %d rows, %v", len(rows), err)
	}
	for _, r := range rows {
		full, err := db.GetSurvey(ctx, app, tenantID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := db.Survey{TenantID: tenantID, ID: full.ID, Status: full.Status, SentAt: full.SentAt}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("got %+v, want %+v", r, want)
		}
	}
	if _, _, err := db.PageSurveys(ctx, app, tenantID, db.SurveyFilter{},
		db.Keyset{Sort: db.SortCreated, Limit: 1, Columns: []string{"token_hash"}}); err == nil {
		t.Error("a page read a column lists do not show")
	}
}

// BenchmarkListSurveys is one REST list page of 20 (Go side: allocations
// and CPU of reading it).
//
//	go test -run '^$' -bench ListSurveys -benchmem ./db/
func BenchmarkListSurveys(b *testing.B) {
	dsn, app := testenv.DB(b)
	admin := testenv.Admin(b, dsn)
	tenantID := seedScanSurveys(b, admin, 100)
	ctx := db.WithTenant(context.Background(), tenantID)
	for b.Loop() {
		if rows, _, err := db.ListSurveys(ctx, app, tenantID, db.SurveyFilter{}, 20, 0); err != nil || len(rows) != 20 {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
	}
}
