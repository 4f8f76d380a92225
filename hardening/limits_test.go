package hardening

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/csat/csat/rest"
)

// TestBodyLimitEveryRoute: every route that takes a body refuses one past
// 64 KiB with 413 (JSON on the API, a page on the HTML routes), and one
// just under the cap is not refused for its size.
func TestBodyLimitEveryRoute(t *testing.T) {
	tg := newTarget(t)
	if rest.MaxBody != 64<<10 {
		t.Fatalf("rest.MaxBody = %d, want 64 KiB", rest.MaxBody)
	}
	checked := 0
	for _, rt := range tg.routes {
		if rt.method != "POST" && rt.method != "PUT" && rt.method != "PATCH" {
			continue
		}
		path := fill(rt.pattern, tg.token)
		for _, v := range []struct {
			ct      string
			chunked bool // no Content-Length: the handler's reader hits the cap
		}{{"application/json", false}, {"application/x-www-form-urlencoded", false}, {"application/json", true}, {"application/x-www-form-urlencoded", true}} {
			ct := v.ct
			if v.chunked && isAPI(path) != (ct == "application/json") {
				continue // a chunked body of the wrong type is refused for its type, early
			}
			big := bigBody(ct, 64<<10+1)
			req, _ := http.NewRequest(rt.method, tg.s.URL+path, bytes.NewReader(big))
			if v.chunked {
				req.ContentLength, req.Body = -1, io.NopCloser(bytes.NewReader(big))
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("X-API-Key", tg.key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", rt.method, path, err)
			}
			res.Body.Close()
			// A chunked body is refused once read past the cap; a route that
			// refuses the request before reading it (unknown id, a static
			// mount refusing the method) may say so with its own 4xx.
			refused := res.StatusCode == http.StatusRequestEntityTooLarge || v.chunked && res.StatusCode >= 400 && res.StatusCode < 500
			if !refused {
				t.Errorf("%s %s (%s, %d bytes, chunked %v): %d, want 413", rt.method, path, ct, len(big), v.chunked, res.StatusCode)
			}
			if isAPI(path) && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: 413 as %q, want JSON", rt.method, path, res.Header.Get("Content-Type"))
			}
			checked++
		}
	}
	if checked < 4 {
		t.Fatalf("checked only %d routes with bodies", checked)
	}
}

// bigBody is a syntactically valid body of n bytes.
func bigBody(ct string, n int) []byte {
	if ct == "application/json" {
		pad := n - len(`{"feedback":""}`)
		return []byte(`{"feedback":"` + strings.Repeat("a", pad) + `"}`)
	}
	return []byte("rating=5&feedback=" + strings.Repeat("a", n-len("rating=5&feedback=")))
}

// TestPagesAreSafe: the public pages carry a CSP and nosniff, and never
// echo what a visitor put in the URL.
func TestPagesAreSafe(t *testing.T) {
	tg := newTarget(t)
	for _, path := range []string{
		"/s/" + tg.token,
		"/s/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
		"/api/v1/csat/rate?rating=9&token=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
		"/api/v1/csat/rate?rating=%3Cimg%20src=x%3E&token=" + tg.token,
	} {
		r := tg.s.Do(t, "GET", path, "", nil, "Accept", "text/html")
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: content type %q", path, r.Header.Get("Content-Type"))
			continue
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		if bytes.Contains(r.Body, []byte("<script>alert")) || bytes.Contains(r.Body, []byte("<img src=x")) {
			t.Errorf("%s: page echoes the raw input:\n%s", path, r.Body)
		}
	}
}
