package hardening

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// TestMixedTrafficTwoAPIsTwoWorkers: two API and two worker processes of
// the real binary on one database and one Redis database, under mixed
// traffic from concurrent clients spread over both APIs: intake over REST
// and GraphQL (three quarters of them due during the run, the rest in two
// hours), repeated intakes, one-click ratings and submits of the emailed
// links, REST list, get and analytics, GraphQL queries. Rate limits are
// off so a 429 cannot hide an error. At the end it counts: no 5xx and no
// other unexpected answer, every intake acknowledged is stored (and
// nothing else is), every due survey was emailed exactly once and no
// other was, and every rating acknowledged is held by its survey.
//
// `make test` runs 20 clients for 7 s; `make faults` 100 clients for 60 s.
func TestMixedTrafficTwoAPIsTwoWorkers(t *testing.T) {
	clients, duration := 20, 7*time.Second
	if os.Getenv("FAULTS_SCALE") != "" {
		clients, duration = 20*scale(), time.Duration(12*scale())*time.Second
	}
	dsn, appDB := testenv.DB(t)
	redisURL, _ := testenv.Redis(t, redisDBWaves)
	smtp := testenv.SMTP(t)
	ctx := context.Background()
	st := &tenants.Store{DB: appDB}
	ten, err := st.CreateTenant(ctx, "Mixed")
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.CreateKey(ctx, ten.ID, []string{tenants.ScopeWrite, tenants.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"DATABASE_URL": dsn, "REDIS_URL": redisURL, "RATE_LIMITS_ENABLED": "false"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	// Pools sized so four processes (28 connections) stay well inside a
	// Postgres's default 100 connections, which other test packages share.
	var apis []*process
	for range 2 {
		apis = append(apis, startProcess(t, with(map[string]string{"CSAT_ROLE": "api", "DB_MAX_CONNS": "8"})))
	}
	for range 2 {
		startProcess(t, with(map[string]string{"CSAT_ROLE": "worker", "SMTP_URL": smtp.URL(),
			"CSAT_RECONCILE_INTERVAL": "1s", "WORKER_CONCURRENCY": "8", "DB_MAX_CONNS": "6"}))
	}

	m := &mix{t: t, key: key.Key, apis: apis, acked: map[string]string{}, conv: map[string]string{}, rated: map[string]bool{},
		stats: map[string]*opStats{}, byAPI: make([]int, len(apis)),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}}
	start := time.Now()
	m.loadEnd = start.Add(duration)
	stop := make(chan struct{})
	var harvest sync.WaitGroup
	harvest.Go(func() { m.harvestTokens(smtp, stop) })
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { m.client(uint64(i)) })
	}
	wg.Wait()
	close(stop)
	harvest.Wait()
	elapsed := time.Since(start)
	m.report(elapsed)

	// The sends of everything due before the end finish.
	admin := testenv.Admin(t, dsn)
	testenv.Eventually(t, 2*time.Minute, "every survey due during the run sent", func() bool {
		var n int
		err := admin.NewRaw("SELECT count(*) FROM surveys WHERE status = 'pending' AND scheduled_for <= ?", m.loadEnd).Scan(ctx, &n)
		return err == nil && n == 0
	})
	m.check(ctx, admin, smtp)
}

// mix is the shared state of the mixed-traffic clients.
type mix struct {
	t       *testing.T
	key     string
	apis    []*process
	http    *http.Client
	loadEnd time.Time

	mu     sync.Mutex
	acked  map[string]string // survey id -> conversation id, every intake answered 201 (or a GraphQL survey)
	conv   map[string]string // conversation id -> survey id
	convs  []string          // acknowledged conversations, for repeats
	ids    []string          // acknowledged survey ids, for gets
	tokens []link            // emailed links, from the SMTP server
	rated  map[string]bool   // recipients with a rating acknowledged
	stats  map[string]*opStats
	byAPI  []int
	bad    []string // unexpected answers
	seq    int
}

type link struct{ token, to string }

type opStats struct {
	n, s5xx  int
	statuses map[int]int
	lat      []time.Duration
}

// ratingFor is the one rating every click and submit for a recipient
// uses: the link-scanner rule clears a survey that gets three different
// ratings within 30 s, and a fixed rating makes the stored one checkable.
func ratingFor(to string) int {
	h := fnv.New32a()
	h.Write([]byte(to))
	return 1 + int(h.Sum32()%5)
}

// harvestTokens collects the links of the emails as they arrive.
func (m *mix) harvestTokens(smtp *testenv.SMTPServer, stop <-chan struct{}) {
	seen := 0
	for {
		msgs := smtp.Messages()
		var found []link
		for _, e := range msgs[seen:] {
			for _, l := range e.Links() {
				if u, err := url.Parse(l); err == nil && u.Query().Get("token") != "" && len(e.To) == 1 {
					found = append(found, link{u.Query().Get("token"), e.To[0]})
					break
				}
			}
		}
		seen = len(msgs)
		m.mu.Lock()
		m.tokens = append(m.tokens, found...)
		m.mu.Unlock()
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// client runs operations until the load ends, choosing each by weight.
func (m *mix) client(seed uint64) {
	r := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	for time.Now().Before(m.loadEnd) {
		switch n := r.IntN(100); {
		case n < 20:
			m.intake(r, false)
		case n < 30:
			m.intake(r, true)
		case n < 33:
			m.repeatIntake(r)
		case n < 58:
			m.rate(r)
		case n < 66:
			m.submit(r)
		case n < 76:
			m.do(r, "list", "GET", "/api/v1/csat/surveys?limit=20", nil, 200)
		case n < 84:
			m.do(r, "analytics", "GET", "/api/v1/csat/analytics", nil, 200)
		case n < 94:
			today := time.Now().UTC()
			m.graphQL(r, "graphql-query", `query($from: Date!, $to: Date!) { surveys(first: 10) { edges { node { id status rating } } totalCount }
				csatAnalytics(startDate: $from, endDate: $to) { totalSurveysSent totalResponses averageRating } }`,
				map[string]any{"from": today.AddDate(0, 0, -29).Format(time.DateOnly), "to": today.AddDate(0, 0, 1).Format(time.DateOnly)})
		default:
			m.getSurvey(r)
		}
	}
}

// resolvedAt makes three intakes in four due within the next three
// seconds (resolved the tenant's 2 h delay ago), never after the load
// ends, and the fourth due in two hours.
func (m *mix) resolvedAt(r *rand.Rand) time.Time {
	if r.IntN(4) == 0 {
		return time.Now()
	}
	due := time.Now().Add(time.Duration(r.Int64N(int64(3 * time.Second))))
	if due.After(m.loadEnd) {
		due = m.loadEnd
	}
	return due.Add(-2 * time.Hour)
}

func (m *mix) intake(r *rand.Rand, gql bool) {
	m.mu.Lock()
	m.seq++
	conv := fmt.Sprintf("mix-%d", m.seq)
	m.mu.Unlock()
	email := conv + "@example.com"
	at := m.resolvedAt(r).UTC().Format(time.RFC3339Nano)
	if gql {
		var out struct {
			ScheduleSurvey struct{ ID, Status string }
		}
		ok := m.graphQL(r, "intake-graphql", `mutation($in: ScheduleSurveyInput!) { scheduleSurvey(input: $in) { id status } }`,
			map[string]any{"in": map[string]any{"conversationId": conv, "contactEmail": email, "resolvedAt": at, "channel": "graphql"}}, &out)
		if ok {
			m.ack(conv, out.ScheduleSurvey.ID, "intake-graphql")
		}
		return
	}
	var out struct{ ID, Status string }
	if m.do(r, "intake-rest", "POST", "/api/v1/csat/surveys",
		map[string]any{"conversation_id": conv, "contact_email": email, "resolved_at": at, "channel": "rest"}, 201, &out) {
		m.ack(conv, out.ID, "intake-rest")
	}
}

func (m *mix) ack(conv, id, op string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == "" {
		m.bad = append(m.bad, op+": acknowledged without an id")
		return
	}
	m.acked[id], m.conv[conv] = conv, id
	m.convs, m.ids = append(m.convs, conv), append(m.ids, id)
}

// repeatIntake reports an acknowledged conversation again: 200 with the
// same survey, nothing new stored.
func (m *mix) repeatIntake(r *rand.Rand) {
	m.mu.Lock()
	if len(m.convs) == 0 {
		m.mu.Unlock()
		return
	}
	conv := m.convs[r.IntN(len(m.convs))]
	want := m.conv[conv]
	m.mu.Unlock()
	var out struct{ ID string }
	if m.do(r, "intake-repeat", "POST", "/api/v1/csat/surveys",
		map[string]any{"conversation_id": conv, "contact_email": conv + "@example.com"}, 200, &out) && out.ID != want {
		m.fail("intake-repeat", fmt.Sprintf("conversation %s answered survey %s, first %s", conv, out.ID, want))
	}
}

func (m *mix) pickLink(r *rand.Rand) (link, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.tokens) == 0 {
		return link{}, false
	}
	return m.tokens[r.IntN(len(m.tokens))], true
}

func (m *mix) rate(r *rand.Rand) {
	m.answer(r, "rate", func(l link, rating int) (string, string, any) {
		return "GET", fmt.Sprintf("/api/v1/csat/rate?token=%s&rating=%d", url.QueryEscape(l.token), rating), nil
	})
}

func (m *mix) submit(r *rand.Rand) {
	m.answer(r, "submit", func(l link, rating int) (string, string, any) {
		return "POST", "/api/v1/csat/" + url.PathEscape(l.token) + "/submit", map[string]any{"rating": rating, "feedback": "mixed traffic"}
	})
}

// answer rates an emailed link through one public endpoint (req builds its
// method, path and body) and records the acknowledged rating.
func (m *mix) answer(r *rand.Rand, op string, req func(l link, rating int) (method, path string, body any)) {
	l, ok := m.pickLink(r)
	if !ok {
		return
	}
	rating := ratingFor(l.to)
	method, path, body := req(l, rating)
	var out struct {
		Status string
		Rating int
	}
	if m.do(r, op, method, path, body, 200, &out) {
		m.recordRating(l.to, op, out.Status, out.Rating, rating)
	}
}

func (m *mix) recordRating(to, op, status string, got, want int) {
	if status != "completed" || got != want {
		m.fail(op, fmt.Sprintf("%s: answered %s with rating %d, want completed %d", to, status, got, want))
		return
	}
	m.mu.Lock()
	m.rated[to] = true
	m.mu.Unlock()
}

func (m *mix) getSurvey(r *rand.Rand) {
	m.mu.Lock()
	if len(m.ids) == 0 {
		m.mu.Unlock()
		return
	}
	id := m.ids[r.IntN(len(m.ids))]
	m.mu.Unlock()
	var out struct{ ID string }
	if m.do(r, "get", "GET", "/api/v1/csat/surveys/"+id, nil, 200, &out) && out.ID != id {
		m.fail("get", fmt.Sprintf("asked for %s, got %s", id, out.ID))
	}
}

// graphQL posts an operation; ok when it answered 200 without errors.
func (m *mix) graphQL(r *rand.Rand, op, query string, vars map[string]any, out ...any) bool {
	var res struct {
		Data   json.RawMessage
		Errors []json.RawMessage
	}
	if !m.do(r, op, "POST", "/graphql", map[string]any{"query": query, "variables": vars}, 200, &res) {
		return false
	}
	if len(res.Errors) > 0 {
		m.fail(op, "GraphQL errors: "+string(res.Errors[0]))
		return false
	}
	if len(out) > 0 {
		if err := json.Unmarshal(res.Data, out[0]); err != nil {
			m.fail(op, fmt.Sprintf("data %s: %v", res.Data, err))
			return false
		}
	}
	return true
}

// do sends one request to a random API process and records the answer;
// ok when it had the wanted status (the body then decoded into out).
func (m *mix) do(r *rand.Rand, op, method, path string, body any, want int, out ...any) bool {
	api := r.IntN(len(m.apis))
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, m.apis[api].url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !strings.Contains(path, "/rate") && !strings.Contains(path, "/submit") {
		req.Header.Set("X-API-Key", m.key)
	}
	start := time.Now()
	res, err := m.http.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	lat := time.Since(start)
	m.mu.Lock()
	s := m.stats[op]
	if s == nil {
		s = &opStats{statuses: map[int]int{}}
		m.stats[op] = s
	}
	s.n++
	s.lat = append(s.lat, lat)
	m.byAPI[api]++
	if err != nil {
		s.statuses[0]++
		m.bad = append(m.bad, fmt.Sprintf("%s %s %s: %v", op, method, path, err))
		m.mu.Unlock()
		return false
	}
	s.statuses[res.StatusCode]++
	if res.StatusCode >= 500 {
		s.s5xx++
	}
	m.mu.Unlock()
	if res.StatusCode != want {
		m.fail(op, fmt.Sprintf("%s %s: %d %s", method, path, res.StatusCode, b))
		return false
	}
	if len(out) > 0 {
		if err := json.Unmarshal(b, out[0]); err != nil {
			m.fail(op, fmt.Sprintf("%s %s: %v in %s", method, path, err, b))
			return false
		}
	}
	return true
}

func (m *mix) fail(op, msg string) {
	m.mu.Lock()
	m.bad = append(m.bad, op+": "+msg)
	m.mu.Unlock()
}

// report logs what the clients did and fails on any unexpected answer.
func (m *mix) report(elapsed time.Duration) {
	t := m.t
	ops := make([]string, 0, len(m.stats))
	total, s5xx := 0, 0
	for op := range m.stats {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		s := m.stats[op]
		slices.Sort(s.lat)
		total += s.n
		s5xx += s.s5xx
		t.Logf("%-15s %6d requests, statuses %v, p50 %s, p99 %s", op, s.n, s.statuses,
			s.lat[len(s.lat)/2].Round(time.Millisecond), s.lat[len(s.lat)*99/100].Round(time.Millisecond))
	}
	t.Logf("%d requests in %s (%.0f/s) over APIs %v; %d surveys acknowledged, %d links emailed, %d recipients rated",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), m.byAPI, len(m.acked), len(m.tokens), len(m.rated))
	if s5xx > 0 {
		t.Errorf("%d answers were 5xx", s5xx)
	}
	for i, b := range m.bad {
		if i == 20 {
			t.Errorf("... and %d more unexpected answers", len(m.bad)-20)
			break
		}
		t.Errorf("unexpected: %s", b)
	}
	for i, n := range m.byAPI {
		if n == 0 {
			t.Errorf("API process %d got no traffic", i)
		}
	}
	if len(m.acked) == 0 || len(m.rated) == 0 {
		t.Fatalf("the run did too little to check: %d intakes acknowledged, %d ratings", len(m.acked), len(m.rated))
	}
}

// check counts the effects in Postgres and the SMTP server.
func (m *mix) check(ctx context.Context, admin *bun.DB, smtp *testenv.SMTPServer) {
	t := m.t
	var rows []struct {
		ID           string
		ContactEmail string
		Status       string
		ScheduledFor time.Time
		Rating       *int
		Flagged      bool
	}
	if err := admin.NewRaw("SELECT id, contact_email, status, scheduled_for, rating, flagged FROM surveys").Scan(ctx, &rows); err != nil {
		t.Fatalf("read the surveys: %v", err)
	}
	perRecipient := map[string]int{}
	msgs := smtp.Messages()
	for _, e := range msgs {
		for _, to := range e.To {
			perRecipient[to]++
		}
	}
	stored := map[string]bool{}
	due, missing, twice, early, unsent, lostRatings := 0, 0, 0, 0, 0, 0
	for _, r := range rows {
		stored[r.ID] = true
		if _, ok := m.acked[r.ID]; !ok {
			t.Errorf("survey %s (%s) is stored but no intake was acknowledged for it", r.ID, r.ContactEmail)
		}
		n := perRecipient[r.ContactEmail]
		if r.ScheduledFor.After(m.loadEnd) {
			if n > 0 || r.Status != "pending" {
				early++
			}
		} else {
			due++
			switch {
			case r.Status != "sent" && r.Status != "completed":
				unsent++
			case n == 0:
				missing++
			case n > 1:
				twice++
			}
		}
		if m.rated[r.ContactEmail] && (r.Status != "completed" || r.Rating == nil || *r.Rating != ratingFor(r.ContactEmail) || r.Flagged) {
			lostRatings++
			if lostRatings <= 5 {
				t.Errorf("survey %s: rating acknowledged, now %s rating %v flagged %v, want completed %d", r.ID, r.Status, r.Rating, r.Flagged, ratingFor(r.ContactEmail))
			}
		}
	}
	lost := 0
	for id := range m.acked {
		if !stored[id] {
			lost++
		}
	}
	t.Logf("stored %d surveys (%d acknowledged, %d lost); %d due: %d emails, %d unsent, %d never emailed, %d emailed twice; %d not due sent early; %d ratings lost",
		len(rows), len(m.acked), lost, due, len(msgs), unsent, missing, twice, early, lostRatings)
	if lost > 0 || unsent > 0 || missing > 0 || twice > 0 || early > 0 || lostRatings > 0 || len(msgs) != due {
		t.Errorf("lost or duplicated effects: %d acknowledged intakes lost, %d due unsent, %d never emailed, %d emailed twice, %d sent early, %d ratings lost, %d emails for %d due surveys",
			lost, unsent, missing, twice, early, lostRatings, len(msgs), due)
	}
	if due == 0 || due == len(rows) {
		t.Errorf("%d of %d surveys were due: the run should have both due and later ones", due, len(rows))
	}
}
