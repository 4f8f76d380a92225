package rest_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

// seed stores surveys directly (the lifecycle is tested elsewhere): id,
// status, sent_at, rating, agent, team, channel.
func seed(t *testing.T, s *testenv.Service, tenantID string, rows ...[7]string) {
	t.Helper()
	for i, r := range rows {
		sv := &db.Survey{TenantID: tenantID, ID: r[0], ConversationID: r[0], ContactEmail: r[0] + "@example.com",
			Status: r[1], AgentID: r[4], TeamID: r[5], Channel: r[6],
			ResolvedAt: time.Now(), ScheduledFor: time.Now(), CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if r[2] != "" {
			at, err := time.Parse(time.RFC3339, r[2])
			if err != nil {
				t.Fatal(err)
			}
			sv.SentAt = &at
		}
		if r[3] != "" {
			n := int(r[3][0] - '0')
			sv.Rating = &n
		}
		if i == 0 {
			fb := "=HYPERLINK(\"http://evil.example\")"
			sv.Feedback = &fb
		}
		if _, err := db.InsertSurvey(context.Background(), s.Admin, sv); err != nil {
			t.Fatal(err)
		}
	}
}

var listRows = [][7]string{
	{"csat_a", "completed", "2026-03-01T10:00:00Z", "5", "ann", "red", "email"},
	{"csat_b", "completed", "2026-03-02T00:00:00Z", "2", "bob", "red", "chat"},
	{"csat_c", "sent", "2026-03-02T23:59:59Z", "", "ann", "blue", "chat"},
	{"csat_d", "expired", "2026-03-03T00:00:00Z", "", "", "", ""},
	{"csat_e", "pending", "", "", "ann", "red", "email"},
	{"csat_f", "completed", "2026-03-04T12:00:00Z", "4", "cyd", "blue", "email"},
}

func TestListFilters(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	seed(t, s, tenantID, listRows...)
	other, _ := s.NewTenant(t, "Other")
	seed(t, s, other, [7]string{"csat_z", "completed", "2026-03-01T10:00:00Z", "5", "ann", "red", "email"})

	cases := []struct {
		query string
		ids   string // newest id first
	}{
		{"", "f,e,d,c,b,a"},
		{"status=completed", "f,b,a"},
		{"status=sent,expired", "d,c"},
		{"from=2026-03-02", "f,d,c,b"},
		{"to=2026-03-02", "c,b,a"},
		{"from=2026-03-02&to=2026-03-02", "c,b"},
		{"from=2026-03-02T00:00:00Z&to=2026-03-02T23:59:59Z", "c,b"},
		{"to=2026-03-02T00:00:00Z", "b,a"},
		{"from=2026-03-02T00:00:01%2B00:00", "f,d,c"},
		{"rating=5", "a"},
		{"rating=4,5", "f,a"},
		{"agent_id=ann", "e,c,a"},
		{"team_id=blue", "f,c"},
		{"channel=chat", "c,b"},
		{"agent_id=ann&channel=email&status=completed", "a"},
		{"agent_id=nobody", ""},
		{"rating=1&limit=5&offset=0", ""},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			res := s.Do(t, "GET", "/api/v1/csat/surveys?"+c.query, key, nil)
			if res.Status != 200 {
				t.Fatalf("%d %s", res.Status, res.Body)
			}
			var body struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
				Total int `json:"total"`
			}
			res.JSON(t, &body)
			var ids []string
			for _, d := range body.Data {
				ids = append(ids, strings.TrimPrefix(d.ID, "csat_"))
			}
			if got := strings.Join(ids, ","); got != c.ids || body.Total != len(ids) {
				t.Fatalf("got %q (total %d), want %q", got, body.Total, c.ids)
			}
		})
	}
	bad := []string{"status=done", "rating=6", "rating=0", "rating=4.5", "rating=a", "rating=4,", "from=yesterday",
		"from=2026-02-30", "to=2026-03-01T25:00:00Z", "from=2026-03-03&to=2026-03-02", "agent=ann", "sort=rating",
		"limit=0", "limit=101", "offset=-1", "agent_id=" + strings.Repeat("a", 256), "channel=a&channel=b"}
	for _, q := range bad {
		t.Run("bad/"+q, func(t *testing.T) {
			res := s.Do(t, "GET", "/api/v1/csat/surveys?"+q, key, nil)
			if res.Status != 400 || res.Map(t)["error"] == nil {
				t.Fatalf("%d %s, want 400 with a JSON error", res.Status, res.Body)
			}
		})
	}
}

func TestExportCSV(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	seed(t, s, tenantID, listRows...)
	// More than two export batches (never sent, so the analytics trigger
	// has nothing to count and the insert stays quick).
	_, err := s.Admin.ExecContext(context.Background(), `
		INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, rating, resolved_at, scheduled_for)
		SELECT ?, 'csat_0' || lpad(i::text, 6, '0'), 'bulk-' || i, 'b' || i || '@example.com', 'completed', 1 + i % 5,
		       '2026-02-01', '2026-02-01'
		FROM generate_series(1, 1203) AS i`, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.NewTenant(t, "Other")
	seed(t, s, other, [7]string{"csat_z", "completed", "2026-03-01T10:00:00Z", "5", "ann", "red", "email"})

	read := func(t *testing.T, query string) [][]string {
		t.Helper()
		res := s.Do(t, "GET", "/api/v1/csat/surveys/export?"+query, key, nil)
		if res.Status != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%d %s %s", res.Status, res.Header.Get("Content-Type"), res.Body)
		}
		recs, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
		if err != nil {
			t.Fatalf("not CSV: %v", err)
		}
		if len(recs) == 0 || recs[0][0] != "id" || recs[0][5] != "rating" {
			t.Fatalf("header %v", recs)
		}
		return recs[1:]
	}

	all := read(t, "format=csv")
	if len(all) != 1203+len(listRows) {
		t.Fatalf("%d rows, want %d", len(all), 1203+len(listRows))
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r[0]] || r[0] == "csat_z" {
			t.Fatalf("row %s repeated or of another tenant", r[0])
		}
		seen[r[0]] = true
	}
	if !slices.IsSortedFunc(all, func(a, b []string) int { return strings.Compare(b[0], a[0]) }) {
		t.Error("rows are not newest first")
	}

	filtered := read(t, "format=csv&from=2026-03-01&agent_id=ann&rating=5")
	if len(filtered) != 1 || filtered[0][0] != "csat_a" || filtered[0][5] != "5" || filtered[0][13] != "2026-03-01T10:00:00Z" {
		t.Fatalf("filtered export %v", filtered)
	}
	if fb := filtered[0][6]; !strings.HasPrefix(fb, "'=") {
		t.Errorf("formula feedback not defused: %q", fb)
	}
	if rows := read(t, "status=pending&to=2026-01-01"); len(rows) != 0 {
		t.Errorf("empty export has %d rows", len(rows))
	}
	bulk := read(t, "status=completed&rating=3")
	if len(bulk) != 241 { // i % 5 == 2 for i in 1..1203
		t.Errorf("bulk filter: %d rows, want 241", len(bulk))
	}

	for _, q := range []string{"format=xlsx", "rating=9", "from=nope", "limit=10"} {
		if r := s.Do(t, "GET", "/api/v1/csat/surveys/export?"+q, key, nil); r.Status != 400 || r.Map(t)["error"] == nil {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "GET", "/api/v1/csat/surveys/export", "", nil); r.Status != 401 {
		t.Errorf("no key: %d", r.Status)
	}
}

// TestListBodyIsEncodingJSON: the list page, written by the hand-written
// encoder, is byte for byte what encoding/json made of the documented
// shape for the same surveys (read whole by id), odd text included. The
// service runs without its worker: the sweep would send the pending survey
// due now between the page and the reads by id.
func TestListBodyIsEncodingJSON(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Role: "api"})
	tenantID, key := s.NewTenant(t, "Acme")
	seed(t, s, tenantID, listRows...)
	ctx := context.Background()
	for i, odd := range []string{`q"uote\`, "<b>&</b>", "tab\tline\n", "ünï ✓ \u2028", "\x7f\x01"} {
		fb := odd
		sv := &db.Survey{TenantID: tenantID, ID: fmt.Sprintf("csat_odd%d", i), ConversationID: odd, ContactEmail: odd,
			ContactName: odd, AgentID: odd, Locale: odd, Status: db.StatusCompleted, Feedback: &fb, Flagged: i%2 == 0,
			ResolvedAt: time.Now(), ScheduledFor: time.Now(), CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if _, err := db.InsertSurvey(ctx, s.Admin, sv); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"", "?limit=3&offset=2", "?limit=5&offset=50", "?agent_id=ann", "?status=completed&limit=100"} {
		res := s.Do(t, "GET", "/api/v1/csat/surveys"+q, key, nil)
		var got struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Total, Limit, Offset int
		}
		if err := json.Unmarshal(res.Body, &got); err != nil || res.Status != 200 {
			t.Fatalf("%s: %d %s", q, res.Status, res.Body)
		}
		want := struct {
			Data   []survey.SurveyJSON `json:"data"`
			Total  int                 `json:"total"`
			Limit  int                 `json:"limit"`
			Offset int                 `json:"offset"`
		}{Data: []survey.SurveyJSON{}, Total: got.Total, Limit: got.Limit, Offset: got.Offset}
		for _, d := range got.Data {
			sv, err := db.GetSurvey(ctx, s.Admin, tenantID, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			want.Data = append(want.Data, survey.ToJSON(sv))
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Body, buf.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", q, res.Body, buf.Bytes())
		}
		if q == "" && len(got.Data) != 11 {
			t.Errorf("first page: %d surveys, want 11", len(got.Data))
		}
	}
}
