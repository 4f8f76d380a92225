package hardening

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/csat/csat/graph"
	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

// maxHeapGrowth bounds how much live heap a batch of hostile queries may
// leave behind (measured after a GC, the service runs in this process).
const maxHeapGrowth = 50 << 20

// hostileRepeats is how often each hostile query is sent: a leak or an
// AST kept per request would show as growth.
const hostileRepeats = 10

// TestGraphQLHostileQueries sends directive and alias floods, a deep query
// and an expensive one to /graphql over HTTP with a valid key: each is
// refused with a client error (a 4xx, with a GraphQL error where GraphQL
// answered), never a 5xx, and the live heap does not grow.
func TestGraphQLHostileQueries(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	_, key := s.NewTenant(t, "GraphQL limits", tenants.AllScopes...)
	if graph.ParserTokenLimit != 10_000 || graph.MaxDepth != 15 || graph.ComplexityLimit != 5000 {
		t.Fatalf("limits changed (tokens %d, depth %d, complexity %d): update this test and the README",
			graph.ParserTokenLimit, graph.MaxDepth, graph.ComplexityLimit)
	}
	// A legitimate query still runs: the limits refuse only the hostile.
	if st, body := postGraphQL(t, s.URL, key, `{ csatConfig { __typename } a: __typename }`); st != 200 || strings.Contains(body, `"errors"`) {
		t.Fatalf("plain query: %d %s", st, body)
	}

	deep := "{ __schema { types { fields { type" + strings.Repeat(" { ofType", 20) + " { name }" + strings.Repeat(" }", 20) + " } } } }"
	expensive := "{"
	for i := range 20 {
		expensive += fmt.Sprintf(" s%d: surveys(first: 100) { edges { node { id status } } }", i)
	}
	expensive += " }"

	cases := []struct {
		name  string
		get   bool   // send as GET ?query= (no body cap; the header cap applies)
		query string // the operation
		want  string // in a GraphQL error message; "" when refused before GraphQL
	}{
		// 200 KB: past the 64 KiB body cap, 413 before anything parses it.
		{name: "100k directives", query: "{ __typename" + strings.Repeat("@a", 100_000) + " }"},
		{name: "100k directives GET", get: true, query: "{ __typename" + strings.Repeat("@a", 100_000) + " }"},
		// 130 KB: also past the body cap.
		{name: "10k aliases", query: "{" + strings.Repeat(" a:__typename", 10_000) + " }"},
		// Under the body cap (and the 64 KiB header cap for GET), past the
		// parser's token limit.
		{name: "30k directives", query: "{ __typename" + strings.Repeat("@a", 30_000) + " }", want: "token limit"},
		{name: "4k aliases", query: "{" + strings.Repeat(" a:__typename", 4_000) + " }", want: "token limit"},
		{name: "3.5k aliases GET", get: true, query: "{" + strings.Repeat(" a:__typename", 3_500) + " }", want: "token limit"},
		{name: "deep", query: deep, want: "levels deep"},
		{name: "expensive", query: expensive, want: "complexity"},
	}
	heapBefore := liveHeap()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range hostileRepeats {
				var st int
				var body string
				if c.get {
					st, body = getGraphQL(t, s.URL, key, c.query)
				} else {
					st, body = postGraphQL(t, s.URL, key, c.query)
				}
				if st < 400 && c.want == "" || st >= 500 {
					t.Fatalf("try %d: %d, want a 4xx: %.300s", i, st, body)
				}
				if c.want != "" && !gqlErrorSays(body, c.want) {
					t.Fatalf("try %d: %d %.300s, want a GraphQL error saying %q", i, st, body, c.want)
				}
			}
		})
	}
	growth := liveHeap() - heapBefore
	t.Logf("live heap after %d hostile requests: %+d KiB", hostileRepeats*len(cases), growth>>10)
	if growth > maxHeapGrowth {
		t.Errorf("live heap grew by %d MiB, want under %d MiB", growth>>20, maxHeapGrowth>>20)
	}
}

// liveHeap is the live heap after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func postGraphQL(t *testing.T, base, key, query string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest("POST", base+"/graphql", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return sendGraphQL(t, req, key)
}

func getGraphQL(t *testing.T, base, key, query string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/graphql?query="+url.QueryEscape(query), nil)
	return sendGraphQL(t, req, key)
}

func sendGraphQL(t *testing.T, req *http.Request, key string) (int, string) {
	t.Helper()
	req.Header.Set("X-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /graphql: %v", req.Method, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b)
}

// gqlErrorSays reports whether body is a GraphQL response with an error
// whose message contains want.
func gqlErrorSays(body, want string) bool {
	var r struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &r) != nil {
		return false
	}
	for _, e := range r.Errors {
		if strings.Contains(e.Message, want) {
			return true
		}
	}
	return false
}
