package hardening

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/errs"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/survey"
)

// tokenCases are the links a visitor can try: the real one; well-formed
// guesses for the same tenant, random and a near miss (the real token with
// its last character changed: a byte-by-byte comparison would take longer
// on it); a well-formed token of a tenant that does not exist; and a
// malformed one (refused before any query: the format is public, so that
// reveals nothing).
func tokenCases(tg *target) []struct{ name, token string } {
	last := "A"
	if strings.HasSuffix(tg.token, last) {
		last = "B"
	}
	return []struct{ name, token string }{
		{"known", tg.token},
		{"unknown", survey.NewToken(tg.tenantID)},
		{"near-miss", tg.token[:len(tg.token)-1] + last},
		{"unknown-tenant", survey.NewToken(secret.ID("ten_"))},
		{"malformed", "not-a-token"},
	}
}

// checkLookup fails unless the lookup of a case answered as it should:
// the known token its survey, every other one "not found" (the same error,
// so the answer does not tell a bad format from a wrong guess).
func checkLookup(tb testing.TB, name string, sv any, err error) {
	tb.Helper()
	if name == "known" {
		if err != nil || sv == nil {
			tb.Fatalf("known token: %v", err)
		}
		return
	}
	if errs.CodeOf(err) != errs.NotFound {
		tb.Fatalf("%s token: %v, want not found", name, err)
	}
}

// BenchmarkTokenLookup compares what the public endpoints spend on a
// known token, on well-formed guesses and on a malformed token, against
// the real Postgres: Lookup (the survey page) and Rate (the one-click
// link, a transaction that locks the row). A guess is one index probe on
// (tenant_id, token_hash) that finds nothing, so it costs what a hit
// costs, minus the row.
//
//	go test -run '^$' -bench TokenLookup -benchtime 2000x ./hardening/
func BenchmarkTokenLookup(b *testing.B) {
	tg := newTarget(b)
	svc := tg.s.App.Svc
	ctx := context.Background()
	for _, c := range tokenCases(tg) {
		b.Run("Lookup/"+c.name, func(b *testing.B) {
			for b.Loop() {
				sv, err := svc.Lookup(ctx, c.token)
				checkLookup(b, c.name, sv, err)
			}
		})
	}
	for _, c := range tokenCases(tg) {
		b.Run("Rate/"+c.name, func(b *testing.B) {
			for b.Loop() {
				// Always the same rating: the link-scanner rule counts
				// different ratings, so repeats keep the survey answered.
				sv, err := svc.Rate(ctx, c.token, 4)
				checkLookup(b, c.name, sv, err)
			}
		})
	}
}

// TestTokenGuessTimingRevealsNothing: what a wrong guess costs must not
// depend on how close it is to a real token, or timing the answers would
// let a visitor find one piece by piece. The lookup hashes the token
// (SHA-256) and probes the index on (tenant_id, token_hash), so a near
// miss costs what any random guess costs. Samples are interleaved, so load
// from elsewhere on the machine hits every case alike, and medians are
// compared with a margin for a shared machine. The known token costs more
// (the row is read and share-locked); that tells only what its 200 says.
func TestTokenGuessTimingRevealsNothing(t *testing.T) {
	tg := newTarget(t)
	svc := tg.s.App.Svc
	ctx := context.Background()
	cases := tokenCases(tg)[:4] // the malformed one never reaches Postgres, by design
	samples := make([][]time.Duration, len(cases))
	const rounds = 300
	for range rounds {
		for i, c := range cases {
			start := time.Now()
			sv, err := svc.Lookup(ctx, c.token)
			samples[i] = append(samples[i], time.Since(start))
			checkLookup(t, c.name, sv, err)
		}
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	random := median(samples[1])
	for i, c := range cases {
		m := median(samples[i])
		t.Logf("Lookup %s: median %s over %d", c.name, m, rounds)
		if c.name != "known" && (m < random/2 || m > random*2) {
			t.Errorf("Lookup of a %s token takes %s (median), a random guess %s: the cost depends on the guess", c.name, m, random)
		}
	}
}

// TestTokenEnumerationLimited: a visitor guessing well-formed tokens of a
// real tenant gets the public endpoints' per-IP budget and no more (rate
// 30, page 30, submit 10 a minute: 70 guesses a minute per IP against
// 2^192 tokens), each guess answered "not found". Once a budget is spent,
// even the real token is refused with 429 before the lookup, so the limit
// is no oracle; a visitor from another IP keeps its own budget, so a
// guesser cannot lock customers out. rest.TestRateLimits checks the
// limits' arithmetic and headers; this checks what they do for guessing.
func TestTokenEnumerationLimited(t *testing.T) {
	tg := newTargetEnv(t, map[string]string{"RATE_LIMITS_ENABLED": "true"})
	guess := func() string { return survey.NewToken(tg.tenantID) }
	endpoints := []struct {
		name   string
		limit  int
		method string
		path   func(token string) string
		body   string
		ok     int // what the real token gets from a fresh IP
	}{
		{"rate", 30, "GET", func(tok string) string { return "/api/v1/csat/rate?rating=4&token=" + tok }, "", 200},
		{"page", 30, "GET", func(tok string) string { return "/s/" + tok }, "", 200},
		{"submit", 10, "POST", func(tok string) string { return "/api/v1/csat/" + tok + "/submit" }, `{"rating": 4}`, 200},
	}
	attacker := clientFrom(t, "127.0.0.1")
	customer := clientFrom(t, "127.0.0.2")
	do := func(c *http.Client, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, tg.s.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	start := time.Now()
	total := 0
	for _, e := range endpoints {
		guesses := 0
		var refused time.Time
		for ; ; guesses++ {
			st := do(attacker, e.method, e.path(guess()), e.body)
			if st == http.StatusTooManyRequests {
				refused = time.Now()
				break
			}
			if st != http.StatusNotFound {
				t.Fatalf("%s: guess %d answered %d, want 404", e.name, guesses+1, st)
			}
			if guesses > 2*e.limit {
				t.Fatalf("%s: %d guesses and no 429", e.name, guesses)
			}
		}
		// The budget refills one request every minute/limit: a slow
		// machine may have earned a few more on the way.
		refilled := int(time.Since(start) / (time.Minute / time.Duration(e.limit)))
		if guesses < e.limit || guesses > e.limit+refilled {
			t.Errorf("%s: %d guesses before the 429, want %d (+%d refilled)", e.name, guesses, e.limit, refilled)
		}
		total += guesses
		// Unless the machine stalled long enough for the budget to refill
		// one request, the real token meets the spent budget.
		st := do(attacker, e.method, e.path(tg.token), e.body)
		if st != http.StatusTooManyRequests && time.Since(refused) < time.Minute/time.Duration(e.limit) {
			t.Errorf("%s: the real token answered %d to the spent budget, want 429 (the limit must answer before the lookup)", e.name, st)
		}
		if st := do(customer, e.method, e.path(tg.token), e.body); st != e.ok {
			t.Errorf("%s: the real token from another IP answered %d, want %d", e.name, st, e.ok)
		}
	}
	t.Logf("%d guesses answered before every public budget of the IP was spent (%s)", total, time.Since(start).Round(time.Millisecond))
}

// clientFrom is an HTTP client whose connections leave from a given
// loopback address (all of 127.0.0.0/8 is local on Linux), so the
// service sees a different client IP.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	if c, err := d.Dial("tcp", "127.0.0.1:1"); err != nil && strings.Contains(err.Error(), "assign requested address") {
		t.Skipf("cannot send from %s: %v", ip, err)
	} else if c != nil {
		c.Close()
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}
