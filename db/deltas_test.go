package db_test

import (
	"context"
	"testing"

	"github.com/csat/csat/testenv"
)

// Each write to surveys appends a delta for every survey that left a count
// (-1) and every one that joined one (+1), and nothing for a change no
// counter or rollup sees (a send's claim and handoff, feedback, a flag):
// those updates must not pay for the trigger.
func TestSurveyWritesAppendDeltas(t *testing.T) {
	dsn, _ := testenv.DB(t)
	admin := testenv.Admin(t, dsn)
	ctx := context.Background()
	tenantID := newTenant(t, admin, "Deltas")
	steps := []struct {
		name        string
		sql         string
		minus, plus int
	}{
		{"intake of three", `INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for, agent_id)
			SELECT ?0, 'csat_d' || i, 'c' || i, 'd@example.com', 'pending', now(), now(), 'agent-1' FROM generate_series(1, 3) i`, 0, 3},
		{"claim", `UPDATE surveys SET token_hash = '\x01', claimed_at = now() WHERE tenant_id = ?0 AND id = 'csat_d1'`, 0, 0},
		{"handoff", `UPDATE surveys SET handed_at = now(), expires_at = now() + interval '7 days', unsubscribe_hash = '\x02'
			WHERE tenant_id = ?0 AND id = 'csat_d1'`, 0, 0},
		{"two sent", `UPDATE surveys SET status = 'sent', sent_at = now() WHERE tenant_id = ?0 AND id IN ('csat_d1', 'csat_d2')`, 2, 2},
		{"rating", `UPDATE surveys SET status = 'completed', rating = 5, responded_at = now() WHERE tenant_id = ?0 AND id = 'csat_d1'`, 1, 1},
		{"feedback", `UPDATE surveys SET feedback = 'thanks' WHERE tenant_id = ?0 AND id = 'csat_d1'`, 0, 0},
		{"flag", `UPDATE surveys SET flagged = true WHERE tenant_id = ?0 AND id = 'csat_d2'`, 0, 0},
		{"agent moved", `UPDATE surveys SET agent_id = 'agent-2' WHERE tenant_id = ?0 AND id = 'csat_d1'`, 1, 1},
		{"rating cleared", `UPDATE surveys SET status = 'sent', rating = NULL, responded_at = NULL WHERE tenant_id = ?0 AND id = 'csat_d1'`, 1, 1},
		{"expired", `UPDATE surveys SET status = 'expired' WHERE tenant_id = ?0 AND id = 'csat_d3'`, 1, 1},
		{"deleted", `DELETE FROM surveys WHERE tenant_id = ?0`, 3, 0},
	}
	for _, st := range steps {
		var before int64
		if err := admin.NewRaw("SELECT coalesce(max(seq), 0) FROM survey_stat_deltas").Scan(ctx, &before); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.NewRaw(st.sql, tenantID).Exec(ctx); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var minus, plus int
		if err := admin.NewRaw(`SELECT count(*) FILTER (WHERE sign = -1), count(*) FILTER (WHERE sign = 1)
			FROM survey_stat_deltas WHERE tenant_id = ? AND seq > ?`, tenantID, before).Scan(ctx, &minus, &plus); err != nil {
			t.Fatal(err)
		}
		if minus != st.minus || plus != st.plus {
			t.Errorf("%s: %d deltas -1 and %d +1, want %d and %d", st.name, minus, plus, st.minus, st.plus)
		}
	}
}
