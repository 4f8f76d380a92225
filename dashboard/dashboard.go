// Package dashboard serves the built-in CSAT dashboard at /dashboard: static
// files embedded in the binary that read everything through the public
// GraphQL API (/graphql) with the user's API key. The server side knows
// nothing about tenants or surveys; it only serves files.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

//go:embed static
var static embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/dashboard"

// CSP allows only the service itself: scripts and styles from files (no
// inline code), API calls and the subscription websocket to the same
// origin, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type file struct {
	body  []byte
	etag  string
	ctype string
}

// Handler serves the dashboard's files. Mount it at Prefix:
// r.Mount(dashboard.Prefix, dashboard.Handler()).
func Handler() http.Handler {
	files := load()
	serve := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if name == "" {
			// Relative asset URLs in index.html need the trailing slash.
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		}
		name = strings.TrimPrefix(path.Clean(name), "/")
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		// Revalidate every time: a new binary must never run with old
		// scripts; the ETag makes the check cheap.
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	}
	return middleware.Compress(5, "text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml")(http.HandlerFunc(serve))
}

// load reads the embedded files once, with their content types and ETags.
func load() map[string]file {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := map[string]file{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		files[p] = file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		panic(err) // embedded files are always readable
	}
	return files
}
