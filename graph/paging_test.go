package graph_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

const pageQuery = `query($first: Int, $after: String, $last: Int, $before: String, $order: SurveyOrder) {
  surveys(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`

type page struct {
	ids               []string
	hasNext, hasPrev  bool
	startCur, endCur  string
	firstCur, lastCur string
}

func fetchPage(t *testing.T, s *testenv.Service, key string, vars map[string]any) page {
	t.Helper()
	d := mustGQL(t, s, key, pageQuery, vars)
	var p page
	edges := dig(d, "surveys", "edges").([]any)
	for i, e := range edges {
		p.ids = append(p.ids, dig(e, "node", "id").(string))
		c := dig(e, "cursor").(string)
		if i == 0 {
			p.firstCur = c
		}
		p.lastCur = c
	}
	pi := dig(d, "surveys", "pageInfo")
	p.hasNext, p.hasPrev = dig(pi, "hasNextPage").(bool), dig(pi, "hasPreviousPage").(bool)
	p.startCur, _ = dig(pi, "startCursor").(string)
	p.endCur, _ = dig(pi, "endCursor").(string)
	if p.startCur != p.firstCur || p.endCur != p.lastCur {
		t.Fatalf("pageInfo cursors %q..%q differ from the edges' %q..%q", p.startCur, p.endCur, p.firstCur, p.lastCur)
	}
	return p
}

// TestSurveysPaging pages every order forwards and backwards while other
// surveys are being inserted: every survey that existed before is seen
// exactly once, in the order's sequence, and nothing is seen twice.
func TestSurveysPaging(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	const n = 40
	base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	for i := range n {
		sv := intake(t, s, tenantID, fmt.Sprintf("conv-%02d", i))
		switch i % 4 {
		case 0: // pending: no sent_at, no rating
		case 1: // sent, unanswered; sent_at ties in pairs
			setSurvey(t, s, tenantID, sv.ID, "status = 'sent', sent_at = ?", base.Add(time.Duration(i/8)*time.Minute))
		default: // completed; ratings and response times tie
			setSurvey(t, s, tenantID, sv.ID, "status = 'completed', sent_at = ?, rating = ?, responded_at = ?",
				base.Add(time.Duration(i/8)*time.Minute), i%5+1, base.Add(time.Duration(i%3)*time.Hour))
		}
	}
	var rows []db.Survey
	if err := s.Admin.NewSelect().Model(&rows).Where("tenant_id = ?", tenantID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Concurrent inserts while paging.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	inserted := 0
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 300; i++ {
			r := time.Now().Add(-time.Minute)
			if _, err := s.App.Svc.Intake(tenantCtx(tenantID), survey.IntakeInput{
				ConversationID: fmt.Sprintf("late-%d", i), ContactEmail: "late@example.com", ResolvedAt: &r,
			}); err == nil {
				inserted++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()

	orders := []struct {
		name  string
		order map[string]any
		key   func(*db.Survey) (int64, bool) // sort value; false: null
	}{
		{"newest-first", nil, nil},
		{"created-asc", map[string]any{"field": "CREATED_AT", "direction": "ASC"}, nil},
		{"sent-desc", map[string]any{"field": "SENT_AT", "direction": "DESC"}, timeKey(func(s *db.Survey) *time.Time { return s.SentAt })},
		{"sent-asc", map[string]any{"field": "SENT_AT", "direction": "ASC"}, timeKey(func(s *db.Survey) *time.Time { return s.SentAt })},
		{"responded-desc", map[string]any{"field": "RESPONDED_AT"}, timeKey(func(s *db.Survey) *time.Time { return s.RespondedAt })},
		{"rating-desc", map[string]any{"field": "RATING", "direction": "DESC"}, ratingKey},
		{"rating-asc", map[string]any{"field": "RATING", "direction": "ASC"}, ratingKey},
	}
	for _, o := range orders {
		want := expectedOrder(rows, o.order, o.key)
		t.Run(o.name+"/forward", func(t *testing.T) {
			var seen []string
			after := ""
			for i := 0; ; i++ {
				vars := map[string]any{"first": 7, "order": o.order}
				if after != "" {
					vars["after"] = after
				}
				p := fetchPage(t, s, key, vars)
				if p.hasPrev != (i > 0) {
					t.Fatalf("page %d: hasPreviousPage %v", i, p.hasPrev)
				}
				seen = append(seen, p.ids...)
				if !p.hasNext {
					break
				}
				after = p.endCur
			}
			checkSeen(t, seen, want)
		})
		t.Run(o.name+"/backward", func(t *testing.T) {
			var seen []string
			before := ""
			for i := 0; ; i++ {
				vars := map[string]any{"last": 7, "order": o.order}
				if before != "" {
					vars["before"] = before
				}
				p := fetchPage(t, s, key, vars)
				if p.hasNext != (i > 0) {
					t.Fatalf("page %d: hasNextPage %v", i, p.hasNext)
				}
				seen = append(slices.Clone(p.ids), seen...)
				if !p.hasPrev {
					break
				}
				before = p.startCur
			}
			checkSeen(t, seen, want)
		})
	}
	stop()
	wg.Wait()
	if inserted == 0 {
		t.Fatal("no survey was inserted while paging")
	}
}

func timeKey(f func(*db.Survey) *time.Time) func(*db.Survey) (int64, bool) {
	return func(s *db.Survey) (int64, bool) {
		if t := f(s); t != nil {
			return t.UnixMicro(), true
		}
		return 0, false
	}
}

func ratingKey(s *db.Survey) (int64, bool) {
	if s.Rating != nil {
		return int64(*s.Rating), true
	}
	return 0, false
}

// expectedOrder sorts rows as the API documents: by the key (null lowest),
// ties by id, descending unless ASC.
func expectedOrder(rows []db.Survey, order map[string]any, key func(*db.Survey) (int64, bool)) []string {
	desc := order == nil || order["direction"] != "ASC"
	rs := slices.Clone(rows)
	sort.Slice(rs, func(i, j int) bool {
		less := rs[i].ID < rs[j].ID
		if key != nil {
			a, aok := key(&rs[i])
			b, bok := key(&rs[j])
			switch {
			case aok != bok:
				less = !aok
			case a != b:
				less = a < b
			}
		}
		if desc {
			return !less
		}
		return less
	})
	ids := make([]string, len(rs))
	for i := range rs {
		ids[i] = rs[i].ID
	}
	return ids
}

// checkSeen: no id twice, and the surveys that existed before paging
// appear in exactly the expected sequence.
func checkSeen(t *testing.T, seen, want []string) {
	t.Helper()
	dup := map[string]bool{}
	for _, id := range seen {
		if dup[id] {
			t.Fatalf("survey %s seen twice", id)
		}
		dup[id] = true
	}
	known := map[string]bool{}
	for _, id := range want {
		known[id] = true
	}
	var got []string
	for _, id := range seen {
		if known[id] {
			got = append(got, id)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paging saw %d of %d surveys in this order:\n got %v\nwant %v", len(got), len(want), got, want)
	}
}
