package dashboard_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/csat/csat/dashboard"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	h := dashboard.Handler()
	cases := []struct {
		name, method, path string
		header             map[string]string
		status             int
		ctype, location    string
		body               string // a substring the body must hold
	}{
		{name: "redirect-to-slash", method: "GET", path: "/dashboard", status: 301, location: "/dashboard/"},
		{name: "index", method: "GET", path: "/dashboard/", status: 200, ctype: "text/html", body: `<script type="module" src="js/app.js">`},
		{name: "index-by-name", method: "GET", path: "/dashboard/index.html", status: 200, ctype: "text/html"},
		{name: "script", method: "GET", path: "/dashboard/js/app.js", status: 200, ctype: "text/javascript", body: "surveyUpdated"},
		{name: "vendor", method: "GET", path: "/dashboard/vendor/chart.umd.min.js", status: 200, ctype: "text/javascript", body: "Chart.js v"},
		{name: "style", method: "GET", path: "/dashboard/style.css", status: 200, ctype: "text/css"},
		{name: "head", method: "HEAD", path: "/dashboard/", status: 200, ctype: "text/html"},
		{name: "unknown-404", method: "GET", path: "/dashboard/nope.js", status: 404},
		{name: "dotdot-404", method: "GET", path: "/dashboard/../go.mod", status: 404},
		{name: "directory-404", method: "GET", path: "/dashboard/js/", status: 404},
		{name: "post-405", method: "POST", path: "/dashboard/", status: 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, nil)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if got := rec.Header().Get("Content-Security-Policy"); got != dashboard.CSP {
				t.Errorf("CSP %q, want %q", got, dashboard.CSP)
			}
			if c.ctype != "" && !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) {
				t.Errorf("Content-Type %q, want %s", rec.Header().Get("Content-Type"), c.ctype)
			}
			if c.location != "" && rec.Header().Get("Location") != c.location {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), c.location)
			}
			if c.body != "" && !strings.Contains(rec.Body.String(), c.body) {
				t.Errorf("body lacks %q", c.body)
			}
		})
	}
}

// A second load revalidates with the ETag and gets a 304; text is gzipped
// for clients that accept it.
func TestCachingAndCompression(t *testing.T) {
	t.Parallel()
	h := dashboard.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard/vendor/chart.umd.min.js", nil))
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("first load: %d, ETag %q, Cache-Control %q", rec.Code, etag, rec.Header().Get("Cache-Control"))
	}
	plain := rec.Body.Len()

	req := httptest.NewRequest("GET", "/dashboard/vendor/chart.umd.min.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("revalidation: %d with %d bytes, want 304 and no body", rec.Code, rec.Body.Len())
	}

	req = httptest.NewRequest("GET", "/dashboard/vendor/chart.umd.min.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	zipped := rec.Body.Len()
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || len(b) != plain {
		t.Fatalf("gunzipped %d bytes (err %v), want %d", len(b), err, plain)
	}
	t.Logf("chart.umd.min.js: %d bytes, %d gzipped", plain, zipped)
}

// The CSP forbids inline code and other origins; these checks catch a file
// that would break under it before a browser does.
func TestStaticFilesKeepToTheCSP(t *testing.T) {
	t.Parallel()
	root := os.DirFS("static")
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	handler := regexp.MustCompile(`\son[a-z]+\s*=`)
	external := regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?(?:https?:)?//`)
	ref := regexp.MustCompile(`(?:src|href)="([^"#]+)"`)
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	for _, tag := range inlineScript.FindAllString(html, -1) {
		if !strings.Contains(tag, "src=") {
			t.Errorf("inline script %s: the CSP blocks it", tag)
		}
	}
	if handler.MatchString(html) {
		t.Errorf("index.html has an inline event handler")
	}
	if strings.Contains(html, " style=") || strings.Contains(html, "<style") {
		t.Errorf("index.html has inline styles")
	}
	if external.MatchString(html) {
		t.Errorf("index.html loads something from another origin")
	}
	for _, m := range ref.FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(root, m[1]); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "vendor/") {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		// An XML namespace is a name, not a request.
		text := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")
		for _, bad := range []string{"http://", "https://", "eval(", "new Function", "innerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s uses %q: no other origins, no eval, no HTML from strings", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The vendored chart library is the version package.json pins, so
// `make dashboard` and the committed file agree.
func TestVendoredChartMatchesPackageJSON(t *testing.T) {
	t.Parallel()
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	want := pkg.Dependencies["chart.js"]
	js, err := os.ReadFile("static/vendor/chart.umd.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if want == "" || !strings.Contains(string(js[:200]), "Chart.js v"+want+"\n") {
		t.Fatalf("static/vendor/chart.umd.min.js is not Chart.js %q: run make dashboard", want)
	}
	if _, err := os.Stat("static/vendor/chart.js.LICENSE.md"); err != nil {
		t.Fatalf("the vendored library's license is missing: %v", err)
	}
}
