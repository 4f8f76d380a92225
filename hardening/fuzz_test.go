package hardening

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHTTP sends arbitrary parameters, query strings and bodies to every
// registered route of the whole service (real Postgres underneath) and
// checks what must hold for any input: no 5xx, nosniff on every answer,
// JSON errors with a code on the API, and no raw input echoed into HTML.
//
//	go test -run '^$' -fuzz FuzzHTTP -fuzztime 60s ./hardening/
func FuzzHTTP(f *testing.F) {
	tg := newTarget(f)
	seeds := []struct {
		param, query, body string
	}{
		{"", "", ""},
		{tg.surveyID, "limit=1&offset=0&status=sent", `{"conversation_id":"c","contact_email":"a@example.com"}`},
		{tg.token, "token=" + tg.token + "&rating=5", `{"rating":5,"feedback":"ok"}`},
		{"<script>alert(1)</script>", "token=<script>&rating=<b>", `{"rating":"5"}`},
		{"ten_x'; DROP TABLE surveys; --.AAAAAAAAAAAAAAAAAAAAAAAA", "status=pending,sent&limit=-1", `{"enabled":null}`},
		{"%00", "limit=99999999999999999999&offset=1e3", `{"survey_delay_hours":4.5}`},
		{"..%2F..%2Fetc%2Fpasswd", "start_date=2026-02-30&end_date=2026-03-01&timezone=Mars/Olympus", `[1,2,3]`},
		{strings.Repeat("a", 300), "timezone=Europe/Berlin&start_date=2025-01-01&end_date=2026-12-31&group_by=agent", `{"a":` + strings.Repeat("[", 5000)},
		{"csat_" + strings.Repeat("z", 26), "granularity=WEEK&rating=1&rating=2", "rating=3&feedback=%3Cscript%3E"},
		{"ten_.", "", `{"conversation_id":"` + strings.Repeat("\\u0000", 10) + `","contact_email":"a@b"}`},
	}
	for i := range tg.routes {
		for _, s := range seeds {
			f.Add(uint8(i), s.param, s.query, []byte(s.body), uint8(1), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, routeIdx uint8, param, query string, body []byte, keySel, ctype uint8) {
		rt := tg.routes[int(routeIdx)%len(tg.routes)]
		path := fill(rt.pattern, param)
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(rt.method, "http://csat.test"+target, bytes.NewReader(body))
		if err != nil {
			t.Skip("not an HTTP request")
		}
		switch keySel % 3 {
		case 1:
			req.Header.Set("X-API-Key", tg.key)
		case 2:
			req.Header.Set("X-API-Key", "ak_live_"+param)
		}
		switch ctype % 3 {
		case 0:
			req.Header.Set("Content-Type", "application/json")
		case 1:
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "text/html")
		}
		rec := httptest.NewRecorder()
		tg.s.App.Handler.ServeHTTP(rec, req)
		res := rec.Result()
		what := rt.method + " " + target
		if res.StatusCode >= 500 {
			t.Fatalf("%s: %d %s", what, res.StatusCode, rec.Body.Bytes())
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no nosniff header", what)
		}
		ct := res.Header.Get("Content-Type")
		if isAPI(path) && res.StatusCode >= 400 && rt.method != "HEAD" && !strings.HasPrefix(ct, "text/html") {
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" || !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("%s: %d error is not the JSON error shape (%s): %s", what, res.StatusCode, ct, rec.Body.Bytes())
			}
		}
		if strings.HasPrefix(ct, "text/html") {
			for _, in := range []string{param, query, string(body)} {
				if strings.ContainsAny(in, "<>\"") && len(in) > 3 && bytes.Contains(rec.Body.Bytes(), []byte(in)) {
					t.Fatalf("%s: HTML answer echoes raw input %q", what, in)
				}
			}
		}
	})
}
