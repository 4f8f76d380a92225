package graph

import "testing"

// TestSurveyColumnsCoverSchema: every Survey field maps to the column it
// shows, so a page never leaves a field it was asked for unread.
func TestSurveyColumnsCoverSchema(t *testing.T) {
	typ := NewExecutableSchema(Config{}).Schema().Types["Survey"]
	if typ == nil {
		t.Fatal("no Survey type in the schema")
	}
	for _, f := range typ.Fields {
		if _, ok := surveyColumns[f.Name]; !ok && f.Name != "__typename" {
			t.Errorf("Survey.%s has no column in surveyColumns", f.Name)
		}
	}
}
