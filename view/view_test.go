package view

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// golden compares got with testdata/name.golden, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./view -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (go test ./view -update, then review the diff):\n%s", path, got)
	}
}

func rateURLs(token string) [5]string {
	var u [5]string
	for i := range u {
		u[i] = "https://csat.example/api/v1/csat/rate?token=" + token + "&rating=" + string(rune('1'+i))
	}
	return u
}

func sampleEmail(locale string) EmailData {
	return EmailData{
		Brand:          Brand{Name: "Acme Support"},
		ContactName:    "Jane",
		ConversationID: "conv-42",
		Locale:         locale,
		RateURLs:       rateURLs("ten_1.tok"),
		SurveyURL:      "https://csat.example/s/ten_1.tok",
		UnsubscribeURL: "https://csat.example/u/ten_1.unsub",
	}
}

func TestEmailGolden(t *testing.T) {
	cases := map[string]EmailData{}
	for _, l := range Languages() {
		cases["email_"+l] = sampleEmail(l)
	}
	branded := sampleEmail("en")
	branded.Brand = Brand{Name: "Bolt & Co", LogoURL: "https://cdn.bolt.example/logo.png", Accent: "#FACC15"}
	branded.Templates = Templates{
		Subject: "{{contact_name}}, rate chat {{conversation_id}}",
		Message: "Hello {{contact_name}} <b>!</b>\nLine two.\n\nSecond paragraph from {{tenant_name}}.",
		Buttons: []string{"Awful", "Bad", "OK", "Good", "Great"},
	}
	cases["email_branded"] = branded
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := SurveyEmail(d)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".html", []byte(e.HTML))
			golden(t, name+".txt", []byte("Subject: "+e.Subject+"\n\n"+e.Text))
		})
	}
}

func TestEmailContent(t *testing.T) {
	d := sampleEmail("pt-BR")
	d.ContactName = `<script>alert(1)</script>`
	e, err := SurveyEmail(d)
	if err != nil {
		t.Fatal(err)
	}
	if e.Lang != "pt" || !strings.Contains(e.HTML, `<html lang="pt">`) {
		t.Errorf("pt-BR email has lang %q", e.Lang)
	}
	if strings.Contains(e.HTML, "<script>") || !strings.Contains(e.HTML, "&lt;script&gt;") {
		t.Error("contact name is not escaped in the HTML part")
	}
	for _, u := range d.RateURLs {
		html := strings.ReplaceAll(u, "&", "&amp;")
		if !strings.Contains(e.HTML, `href="`+html+`"`) || !strings.Contains(e.Text, u) {
			t.Errorf("link %s missing from a part", u)
		}
	}
	for _, u := range []string{d.SurveyURL, d.UnsubscribeURL} {
		if !strings.Contains(e.HTML, u) || !strings.Contains(e.Text, u) {
			t.Errorf("link %s missing from a part", u)
		}
	}
	for _, bad := range []string{"<link", "<script", "src=\"http:", "<style"} {
		if strings.Contains(e.HTML, bad) {
			t.Errorf("email HTML contains %q: external or non-inline resources", bad)
		}
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	d := sampleEmail("en")
	d.ContactName = "Eve\r\nBcc: victim@example.com"
	d.Templates.Subject = "Hi {{contact_name}}"
	e, err := SurveyEmail(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(e.Subject, "\r\n") || e.Subject != "Hi Eve Bcc: victim@example.com" {
		t.Fatalf("subject %q", e.Subject)
	}
}

func TestExpand(t *testing.T) {
	vars := Vars{ContactName: "Ana", TenantName: "Acme", ConversationID: "c1"}.Map()
	noName := Vars{TenantName: "Acme"}.Map()
	cases := []struct {
		name, tpl string
		vars      map[string]string
		want      string
	}{
		{"all-vars", "{{contact_name}} / {{tenant_name}} / {{conversation_id}}", vars, "Ana / Acme / c1"},
		{"spaces-inside", "Hi {{ contact_name }}!", vars, "Hi Ana!"},
		{"empty-drops-space", "Hi {{contact_name}}, thanks", noName, "Hi, thanks"},
		{"unknown-kept", "{{nope}} {{tenant_name}}", vars, "{{nope}} Acme"},
		{"no-recursion", "{{contact_name}}", map[string]string{"contact_name": "{{tenant_name}}", "tenant_name": "X"}, "{{tenant_name}}"},
		{"html-not-interpreted", "{{contact_name}}", map[string]string{"contact_name": "<b>"}, "<b>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Expand(c.tpl, c.vars); got != c.want {
				t.Fatalf("Expand(%q) = %q, want %q", c.tpl, got, c.want)
			}
		})
	}
}

func TestUnknownVariables(t *testing.T) {
	cases := []struct {
		tpl     string
		unknown []string
		ok      bool
	}{
		{"Hi {{contact_name}}", nil, true},
		{"{{tenant_name}} {{conversation_id}}", nil, true},
		{"{{agent}}", []string{"agent"}, true},
		{"{{contact_name", nil, false},
		{"{{ 1 }}", nil, false},
		{"plain", nil, true},
	}
	for _, c := range cases {
		unknown, ok := UnknownVariables(c.tpl)
		if !slices.Equal(unknown, c.unknown) || ok != c.ok {
			t.Errorf("UnknownVariables(%q) = %v, %v; want %v, %v", c.tpl, unknown, ok, c.unknown, c.ok)
		}
	}
}

func TestLang(t *testing.T) {
	cases := map[string]string{
		"": "en", "en": "en", "es": "es", "fr-CA": "fr", "DE": "de", "pt_BR": "pt",
		"it": "en", "zz-ZZ": "en", "e": "en", "<script>": "en",
	}
	for in, want := range cases {
		if got := Lang(in); got != want {
			t.Errorf("Lang(%q) = %q, want %q", in, got, want)
		}
	}
	for _, l := range []string{"en", "es", "fr", "de", "pt"} {
		if !Supported(l) {
			t.Errorf("%s has no catalogue", l)
		}
	}
}

func TestLangFromRequest(t *testing.T) {
	cases := map[string]string{
		"":                        "en",
		"de-DE,de;q=0.9,en;q=0.8": "de",
		"it,fr;q=0.5,es;q=0.7":    "es",
		"ja":                      "en",
		"pt-BR;q=0, fr":           "fr",
		"fr;q=0.2,en;q=0.9":       "en",
		"es;q=abc":                "es",
	}
	for header, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", header)
		if got := LangFromRequest(r); got != want {
			t.Errorf("Accept-Language %q: %q, want %q", header, got, want)
		}
	}
}

// Every catalogue has exactly the keys of the English one, and no value
// is empty, so no page ever shows a blank.
func TestCataloguesComplete(t *testing.T) {
	en := catalogues["en"]
	for lang, cat := range catalogues {
		for k := range en {
			if strings.TrimSpace(cat[k]) == "" {
				t.Errorf("%s: %s missing or empty", lang, k)
			}
		}
		for k := range cat {
			if _, ok := en[k]; !ok {
				t.Errorf("%s: %s is not in en.json", lang, k)
			}
		}
	}
}

func TestAccent(t *testing.T) {
	if got := (Brand{Accent: "red"}).accent(); got != DefaultAccent {
		t.Errorf("invalid accent used: %s", got)
	}
	if got := (Brand{Accent: "#ABCDEF"}).accent(); got != "#abcdef" {
		t.Errorf("accent = %s", got)
	}
	if onAccent("#facc15") != "#111827" || onAccent("#2563eb") != "#ffffff" {
		t.Error("text on accent has poor contrast")
	}
	if (Brand{LogoURL: "http://x.example/l.png"}).logo() != "" || (Brand{LogoURL: `https://x.example/"onerror=1`}).logo() != "" {
		t.Error("non-https or odd logo URL shown")
	}
}

const testNonce = "TESTNONCE"

func TestPagesGolden(t *testing.T) {
	brand := Brand{Name: "Acme Support"}
	cases := map[string]struct {
		page string
		d    PageData
	}{
		"survey_en":       {PageSurvey, PageData{Lang: "en", Brand: brand, Action: "/s/ten_1.tok"}},
		"survey_de_rated": {PageSurvey, PageData{Lang: "de", Brand: brand, Action: "/s/ten_1.tok", Rating: 4, Feedback: "Schnell & <freundlich>"}},
		"survey_error":    {PageSurvey, PageData{Lang: "fr", Brand: brand, Action: "/s/ten_1.tok", MessageKey: "err_rating"}},
		"thanks_oneclick": {PageThanks, PageData{Lang: "es", Brand: Brand{Name: "Bolt", LogoURL: "https://cdn.bolt.example/l.png", Accent: "#16a34a"}, Action: "/s/ten_1.tok", Rating: 5}},
		"thanks_done":     {PageThanks, PageData{Lang: "pt", Brand: brand, Rating: 3, Done: true}},
		"expired":         {PageExpired, PageData{Lang: "en", Brand: brand}},
		"notfound":        {PageNotFound, PageData{Lang: "en"}},
		"error":           {PageError, PageData{Lang: "en", MessageKey: "err_rate_limited"}},
		"unsubscribe":     {PageUnsubscribe, PageData{Lang: "en", Brand: brand, Action: "/u/ten_1.unsub"}},
		"unsubscribed":    {PageUnsubscribed, PageData{Lang: "en", Brand: brand}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := page(c.page, c.d, testNonce)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > 30<<10 {
				t.Errorf("%s is %d bytes, over 30 KB", name, len(b))
			}
			s := string(b)
			if !strings.Contains(s, `<html lang="`+Lang(c.d.Lang)+`">`) {
				t.Error("html lang not set")
			}
			if strings.Count(s, "<script") != strings.Count(s, `<script nonce="`+testNonce+`">`) ||
				strings.Count(s, "<style") != strings.Count(s, `<style nonce="`+testNonce+`">`) {
				t.Error("a script or style block lacks the nonce")
			}
			if strings.Contains(s, " style=") {
				t.Error("style attribute: the CSP blocks it")
			}
			golden(t, name+".html", b)
		})
	}
}

func TestRenderHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/s/x", nil)
	r.Header.Set("Accept-Language", "fr")
	Render(w, r, 404, PageNotFound, PageData{})
	h := w.Header()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'nonce-", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Error("CSP allows unsafe-inline")
	}
	nonce := csp[strings.Index(csp, "'nonce-")+7:]
	nonce = nonce[:strings.IndexByte(nonce, '\'')]
	if len(nonce) < 16 || !strings.Contains(w.Body.String(), `nonce="`+nonce+`"`) {
		t.Errorf("nonce %q not used in the page", nonce)
	}
	if h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", h)
	}
	if w.Code != 404 || !strings.Contains(w.Body.String(), `lang="fr"`) {
		t.Errorf("status %d, want 404 in French", w.Code)
	}
}

func BenchmarkSurveyEmail(b *testing.B) {
	d := sampleEmail("de")
	for b.Loop() {
		if _, err := SurveyEmail(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSurveyPage(b *testing.B) {
	d := PageData{Lang: "fr", Brand: Brand{Name: "Acme"}, Action: "/s/ten_1.tok", Rating: 4}
	for b.Loop() {
		if _, err := page(PageSurvey, d, testNonce); err != nil {
			b.Fatal(err)
		}
	}
}

// expandRE is Expand as it was written first, with varRE: the reference
// the scan must match.
func expandRE(tpl string, vars map[string]string) string {
	return varRE.ReplaceAllStringFunc(tpl, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		v, ok := vars[sub[2]]
		if !ok {
			return m
		}
		if v == "" {
			return ""
		}
		return sub[1] + v
	})
}

var expandVars = map[string]string{"contact_name": "Ann", "tenant_name": "", "conversation_id": "c-1 {{contact_name}}"}

func TestExpandMatchesTheRegexp(t *testing.T) {
	for _, tpl := range []string{
		"", "plain", "Hi {{contact_name}},", "Hi {{tenant_name}},", "Hi  {{ contact_name }}!", "{{contact_name}}{{contact_name}}",
		"{{contact_name}} {{contact_name}}", "{{{contact_name}}}", "{{ {{contact_name}}", "{{unknown}} {{contact_name}}",
		"{{contact_name", "{{}}", "{{\tcontact_name\n}}", "x {{conversation_id}} y", " {{tenant_name}} {{tenant_name}}",
		"{{contact-name}}", "Olá {{contact_name}}, ñ {{tenant_name}}.",
	} {
		if got, want := Expand(tpl, expandVars), expandRE(tpl, expandVars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", tpl, got, want)
		}
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"Hi {{contact_name}},", "{{ {{tenant_name}}}}", " {{x}}{{conversation_id}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tpl string) {
		if got, want := Expand(tpl, expandVars), expandRE(tpl, expandVars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", tpl, got, want)
		}
	})
}
