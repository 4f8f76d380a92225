package view

import (
	"embed"
	"encoding/json"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Message catalogues, one JSON file per language: translators edit files,
// not code.
//
//go:embed locales/*.json
var localeFiles embed.FS

// catalogues maps a language ("en") to its messages.
var catalogues = loadCatalogues()

func loadCatalogues() map[string]map[string]string {
	out := map[string]map[string]string{}
	entries, err := localeFiles.ReadDir("locales")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := localeFiles.ReadFile("locales/" + e.Name())
		if err != nil {
			panic(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic("locales/" + e.Name() + ": " + err.Error())
		}
		out[strings.TrimSuffix(e.Name(), path.Ext(e.Name()))] = m
	}
	return out
}

// DefaultLang is the language of unknown locales.
const DefaultLang = "en"

// Languages lists the languages with a catalogue, sorted.
func Languages() []string {
	out := make([]string, 0, len(catalogues))
	for l := range catalogues {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// baseLang is the primary language subtag of a locale: "pt" for "pt-BR"
// or "pt_BR".
func baseLang(locale string) string {
	locale = strings.TrimSpace(locale)
	if i := strings.IndexAny(locale, "-_"); i >= 0 {
		locale = locale[:i]
	}
	return strings.ToLower(locale)
}

// Supported reports whether a locale's language has a catalogue.
func Supported(locale string) bool {
	_, ok := catalogues[baseLang(locale)]
	return ok
}

// Lang picks the language used for a survey locale: its primary language
// when there is a catalogue for it, English otherwise.
func Lang(locale string) string {
	if l := baseLang(locale); catalogues[l] != nil {
		return l
	}
	return DefaultLang
}

// LangFromRequest picks a language from Accept-Language, for pages whose
// survey is unknown. Quality values are honoured; ties keep header order.
func LangFromRequest(r *http.Request) string {
	best, bestQ := DefaultLang, -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, q := strings.TrimSpace(part), 1.0
		if i := strings.IndexByte(tag, ';'); i >= 0 {
			if v, ok := strings.CutPrefix(strings.TrimSpace(tag[i+1:]), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
			tag = strings.TrimSpace(tag[:i])
		}
		if q > bestQ && q > 0 && Supported(tag) {
			best, bestQ = Lang(tag), q
		}
	}
	return best
}

func catalogue(lang string) map[string]string {
	if c := catalogues[lang]; c != nil {
		return c
	}
	return catalogues[DefaultLang]
}

// Vars are the variables a tenant's templates may use.
type Vars struct {
	ContactName    string
	TenantName     string
	ConversationID string
}

// TemplateVariables are the names a tenant's template may use.
var TemplateVariables = []string{"contact_name", "tenant_name", "conversation_id"}

// Map returns the variables by name.
func (v Vars) Map() map[string]string {
	return map[string]string{"contact_name": v.ContactName, "tenant_name": v.TenantName, "conversation_id": v.ConversationID}
}

var varRE = regexp.MustCompile(`( ?)\{\{\s*([A-Za-z_]+)\s*\}\}`)

// Expand substitutes {{name}} in tpl with vars[name]. The result is plain
// text: callers escape it for HTML. An empty value also removes the space
// before it, so "Hi {{contact_name}}," becomes "Hi," for a nameless
// contact. Unknown names stay as written.
func Expand(tpl string, vars map[string]string) string {
	if !strings.Contains(tpl, "{{") {
		return tpl
	}
	// A scan for varRE's matches, leftmost first as its
	// ReplaceAllStringFunc would find them (several times faster: every
	// email expands its whole catalogue).
	var b strings.Builder
	b.Grow(len(tpl))
	for i := 0; i < len(tpl); {
		start, name, end := matchVar(tpl, i)
		if start < 0 {
			b.WriteString(tpl[i:])
			break
		}
		b.WriteString(tpl[i:start])
		switch v, ok := vars[name]; {
		case !ok:
			b.WriteString(tpl[start:end])
		case v != "":
			if tpl[start] == ' ' {
				b.WriteByte(' ')
			}
			b.WriteString(v)
		}
		i = end
	}
	return b.String()
}

// matchVar finds the first match of varRE in s at or after from: where it
// starts (its space, if any), the variable's name and where it ends;
// start is -1 when there is none.
func matchVar(s string, from int) (start int, name string, end int) {
	for {
		k := strings.Index(s[from:], "{{")
		if k < 0 {
			return -1, "", 0
		}
		open := from + k
		j := open + 2
		for j < len(s) && isRESpace(s[j]) {
			j++
		}
		n := j
		for n < len(s) && (s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] == '_') {
			n++
		}
		e := n
		for e < len(s) && isRESpace(s[e]) {
			e++
		}
		if n > j && strings.HasPrefix(s[e:], "}}") {
			start = open
			if open > from && s[open-1] == ' ' {
				start = open - 1
			}
			return start, s[j:n], e + 2
		}
		from = open + 1
	}
}

// isRESpace is RE2's \s: [\t\n\f\r ].
func isRESpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// UnknownVariables returns the {{names}} in tpl that are not template
// variables, and whether every "{{" opens a well-formed variable.
func UnknownVariables(tpl string) (unknown []string, wellFormed bool) {
	known := map[string]bool{}
	for _, n := range TemplateVariables {
		known[n] = true
	}
	for _, m := range varRE.FindAllStringSubmatch(tpl, -1) {
		if !known[m[2]] {
			unknown = append(unknown, m[2])
		}
	}
	return unknown, strings.Count(tpl, "{{") == len(varRE.FindAllString(tpl, -1))
}

func expandAll(cat map[string]string, vars map[string]string) map[string]string {
	out := make(map[string]string, len(cat))
	for k, v := range cat {
		out[k] = Expand(v, vars)
	}
	return out
}
