package graph_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/csat/csat/testenv"
)

var surveyFieldNames = []string{"id", "conversationId", "contactEmail", "contactName", "rating", "feedback", "status",
	"scheduledFor", "sentAt", "respondedAt", "expiresAt", "createdAt", "agentId", "teamId", "channel"}

// TestSurveysFieldsAlone: a page reads only the columns its selection
// shows; each field asked for alone (also through a fragment and an alias,
// and in every order) has the value it has when all fields are asked for.
func TestSurveysFieldsAlone(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, key := s.NewTenant(t, "Acme")
	base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	for i := range 8 {
		sv := intake(t, s, tenantID, fmt.Sprintf("conv-%02d", i))
		switch i % 4 {
		case 1:
			setSurvey(t, s, tenantID, sv.ID, "status = 'sent', sent_at = ?, expires_at = ?, agent_id = 'ag', team_id = 't1', channel = 'chat', contact_name = 'Ann'",
				base.Add(time.Duration(i)*time.Minute), base.Add(time.Hour))
		case 2:
			setSurvey(t, s, tenantID, sv.ID, "status = 'completed', sent_at = ?, rating = ?, responded_at = ?, feedback = 'fine'",
				base, i%5+1, base.Add(time.Duration(i)*time.Hour))
		}
	}
	all := fmt.Sprint(surveyFieldNames)
	all = all[1 : len(all)-1]
	for _, order := range []string{"CREATED_AT", "SENT_AT", "RESPONDED_AT", "RATING"} {
		vars := map[string]any{"order": map[string]any{"field": order, "direction": "DESC"}}
		ids := mustGQL(t, s, key, `query($order: SurveyOrder) { surveys(first: 20, orderBy: $order) { edges { cursor node { id } } } }`, vars)
		edges := dig(ids, "surveys", "edges").([]any)
		if len(edges) != 8 {
			t.Fatalf("%s: %d edges", order, len(edges))
		}
		// The whole survey, read by id (every column).
		want := make([]any, len(edges))
		for i, e := range edges {
			want[i] = dig(mustGQL(t, s, key, `query($id: ID!) { survey(id: $id) { `+all+` } }`,
				map[string]any{"id": dig(e, "node", "id")}), "survey")
		}
		// Each selection and the field its one key ("x" for the alias) shows.
		sels := map[string]string{all: ""}
		for _, f := range surveyFieldNames {
			sels[f], sels["... on Survey { "+f+" }"], sels["x: "+f] = f, f, f
		}
		for sel, f := range sels {
			d := mustGQL(t, s, key, `query($order: SurveyOrder) { surveys(first: 20, orderBy: $order) { edges { cursor node { `+sel+` } } } }`, vars)
			got := dig(d, "surveys", "edges").([]any)
			for i := range edges {
				node := dig(got[i], "node").(map[string]any)
				if v, ok := node["x"]; ok {
					node = map[string]any{f: v}
				}
				for name, v := range node {
					if !reflect.DeepEqual(v, dig(want[i], name)) {
						t.Errorf("%s, %s: edge %d has %s = %v, survey(id) %v", order, sel, i, name, v, dig(want[i], name))
					}
				}
				if dig(got[i], "cursor") != dig(edges[i], "cursor") {
					t.Errorf("%s, %s: edge %d cursor %v, want %v", order, sel, i, dig(got[i], "cursor"), dig(edges[i], "cursor"))
				}
			}
		}
	}
}
