package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// fieldsWalledElsewhere are root fields whose tenant wall is tested in
// another package, with where.
var fieldsWalledElsewhere = map[string]string{
	"surveyUpdated": "graph.TestSubscriptionAcrossInstances / TestSubscriptionAuth: a subscriber only hears its own tenant",
}

// TestGraphQLWallsCoverEverySchemaField fails when the schema gains a
// query, mutation or subscription field that no wall probe exercises, the
// GraphQL counterpart of the route walk in TestTenantWallsEveryRoute.
func TestGraphQLWallsCoverEverySchemaField(t *testing.T) {
	files, err := filepath.Glob("../graph/*.graphqls")
	if err != nil || len(files) == 0 {
		t.Fatalf("schema files: %v", err)
	}
	var sources []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: f, Input: string(b)})
	}
	schema, gerr := gqlparser.LoadSchema(sources...)
	if gerr != nil {
		t.Fatalf("load schema: %v", gerr)
	}
	// Every query text the wall probes send (ids do not matter here).
	w := &wallEnv{surveysA: []string{"csat_x"}}
	var sent string
	for _, p := range graphQLProbes(w, "/graphql") {
		if body, ok := p.body.(map[string]any); ok {
			sent += body["query"].(string) + "\n"
		}
	}
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if root == nil {
			continue
		}
		for _, f := range root.Fields {
			if f.Name == "__schema" || f.Name == "__type" {
				continue
			}
			if _, ok := fieldsWalledElsewhere[f.Name]; ok {
				continue
			}
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(f.Name) + `\b\s*[({]`).MatchString(sent) {
				t.Errorf("%s.%s has no tenant-wall probe in app/walls_graphql_test.go", root.Name, f.Name)
			}
		}
	}
}
