package graph_test

import (
	"testing"

	"github.com/csat/csat/testenv"
)

// TestTenantIsolation: every field answers only for the caller's tenant;
// another tenant's ids are unknown and its cursors select nothing of it.
func TestTenantIsolation(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	aID, aKey := s.NewTenant(t, "A")
	bID, bKey := s.NewTenant(t, "B")
	x := intake(t, s, aID, "conv-1")
	y := intake(t, s, bID, "conv-2")

	// survey(id), batched through the dataloader with the caller's own.
	d := mustGQL(t, s, bKey, `query($x: ID!, $y: ID!) { x: survey(id: $x) { id } y: survey(id: $y) { id } x2: survey(id: $x) { id } }`,
		map[string]any{"x": x.ID, "y": y.ID})
	if d["x"] != nil || d["x2"] != nil || dig(d, "y", "id") != y.ID {
		t.Fatalf("B read %v", d)
	}
	// surveys and totalCount, also with A's cursor.
	aPage := fetchPage(t, s, aKey, map[string]any{"first": 1})
	for _, after := range []any{nil, aPage.endCur} {
		d = mustGQL(t, s, bKey, `query($a: String) { surveys(after: $a) { totalCount edges { node { id } } } }`, map[string]any{"a": after})
		edges := dig(d, "surveys", "edges").([]any)
		if dig(d, "surveys", "totalCount") != float64(1) || len(edges) > 1 || (len(edges) == 1 && dig(edges[0], "node", "id") != y.ID) {
			t.Fatalf("B listed %v (after %v)", d, after)
		}
	}
	// Mutations on A's survey are NOT_FOUND and change nothing.
	for _, m := range []string{"resendSurvey", "cancelSurvey"} {
		r := gql(t, s, bKey, `mutation($id: ID!) { `+m+`(id: $id) { id } }`, map[string]any{"id": x.ID})
		if r.code() != "NOT_FOUND" {
			t.Fatalf("%s of A's survey by B: %+v", m, r.Errors)
		}
	}
	if sv := loadSurvey(t, s, aID, x.ID); sv.Status != "pending" {
		t.Fatalf("A's survey became %s", sv.Status)
	}
	// The same conversation id is a separate survey per tenant.
	d = mustGQL(t, s, bKey, `mutation { scheduleSurvey(input: {conversationId: "conv-1", contactEmail: "b@example.com"}) { id contactEmail } }`, nil)
	if dig(d, "scheduleSurvey", "id") == x.ID || dig(d, "scheduleSurvey", "contactEmail") != "b@example.com" {
		t.Fatalf("B's intake answered %v", d)
	}
	// Config.
	mustGQL(t, s, bKey, `mutation { updateCsatConfig(input: {surveyExpiryDays: 30, enabled: false}) { enabled } }`, nil)
	d = mustGQL(t, s, aKey, `{ csatConfig { enabled surveyExpiryDays } }`, nil)
	if dig(d, "csatConfig", "enabled") != true || dig(d, "csatConfig", "surveyExpiryDays") != float64(7) {
		t.Fatalf("A's config after B's update: %v", d)
	}
	d = mustGQL(t, s, bKey, `{ csatConfig { enabled surveyExpiryDays } }`, nil)
	if dig(d, "csatConfig", "enabled") != false || dig(d, "csatConfig", "surveyExpiryDays") != float64(30) {
		t.Fatalf("B's config: %v", d)
	}
}
