package survey

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
)

func TestResendable(t *testing.T) {
	now := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	five := 5
	cases := []struct {
		name string
		sv   db.Survey
		ok   bool
	}{
		{"sent-unanswered", db.Survey{Status: db.StatusSent, ExpiresAt: &later}, true},
		{"sent-scanner-cleared", db.Survey{Status: db.StatusSent, ExpiresAt: &later, Flagged: true}, true},
		{"pending", db.Survey{Status: db.StatusPending}, false},
		{"completed", db.Survey{Status: db.StatusCompleted, Rating: &five, ExpiresAt: &later}, false},
		{"sent-link-expired", db.Survey{Status: db.StatusSent, ExpiresAt: &earlier}, false},
		{"sent-expires-now", db.Survey{Status: db.StatusSent, ExpiresAt: &now}, false},
		{"expired", db.Survey{Status: db.StatusExpired, ExpiresAt: &earlier}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Resendable(&c.sv, now)
			if (err == nil) != c.ok {
				t.Fatalf("Resendable = %v, want ok %v", err, c.ok)
			}
			if err != nil && errs.CodeOf(err) != errs.Conflict {
				t.Fatalf("code %s", errs.CodeOf(err))
			}
		})
	}
}

func TestCancelable(t *testing.T) {
	for status, ok := range map[string]bool{db.StatusPending: true, db.StatusSent: false, db.StatusCompleted: false, db.StatusExpired: false} {
		if err := Cancelable(&db.Survey{Status: status}); (err == nil) != ok {
			t.Errorf("%s: Cancelable = %v, want ok %v", status, err, ok)
		}
	}
}

func TestCursor(t *testing.T) {
	at := time.Date(2026, 3, 7, 12, 0, 0, 123456000, time.UTC)
	three := 3
	sv := &db.Survey{ID: "csat_1", SentAt: &at, Rating: &three}
	for _, o := range []Order{NewestFirst, {Sort: db.SortCreated}, {Sort: db.SortSent, Desc: true}, {Sort: db.SortResponded}, {Sort: db.SortRating, Desc: true}} {
		c := encodeCursor(o, sv)
		pos, err := decodeCursor(c, o)
		if err != nil || pos.ID != "csat_1" {
			t.Fatalf("%v: round trip %v %v", o, pos, err)
		}
		if o.Sort == db.SortSent && pos.Value != "2026-03-07T12:00:00.123456Z" {
			t.Fatalf("sent key %q", pos.Value)
		}
		if o.Sort == db.SortResponded && pos.Value != "-infinity" {
			t.Fatalf("null responded key %q", pos.Value)
		}
		other := Order{Sort: o.Sort, Desc: !o.Desc}
		if _, err := decodeCursor(c, other); errs.CodeOf(err) != errs.Invalid {
			t.Fatalf("%v cursor accepted for %v: %v", o, other, err)
		}
	}
	// The hand-written encoding is json.Marshal's, whatever the id holds.
	for _, id := range []string{"csat_1", `q"u\\o<t>e&`, "tab\there", "é☃", "\u2028", "\xff"} {
		sv := &db.Survey{ID: id, SentAt: &at, Rating: &three}
		for _, o := range []Order{NewestFirst, {Sort: db.SortSent}, {Sort: db.SortRating, Desc: true}} {
			want, _ := json.Marshal(cursor{Sort: o.Sort, Desc: o.Desc, Value: db.KeyValue(o.Sort, sv), ID: id})
			if got := encodeCursor(o, sv); got != base64.RawURLEncoding.EncodeToString(want) {
				t.Errorf("cursor of %q in %v: %s, want %s", id, o, got, want)
			}
		}
	}
	for _, bad := range []string{"!", "e30", "eyJzIjoicmF0aW5nIiwidiI6IjkiLCJpIjoieCJ9" /* rating 9 */, "bm90IGpzb24"} {
		if _, err := decodeCursor(bad, Order{Sort: db.SortRating}); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}
