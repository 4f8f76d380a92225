package survey

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
)

func TestCanTransition(t *testing.T) {
	cases := []struct {
		from, to string
		ok       bool
	}{
		{db.StatusPending, db.StatusSent, true},
		{db.StatusPending, db.StatusExpired, true},
		{db.StatusPending, db.StatusCompleted, false},
		{db.StatusSent, db.StatusCompleted, true},
		{db.StatusSent, db.StatusExpired, true},
		{db.StatusSent, db.StatusPending, false},
		{db.StatusCompleted, db.StatusCompleted, true}, // re-rating
		{db.StatusCompleted, db.StatusSent, true},      // scanner reset
		{db.StatusCompleted, db.StatusPending, false},
		{db.StatusExpired, db.StatusSent, false},
		{db.StatusExpired, db.StatusCompleted, false},
		{"bogus", db.StatusSent, false},
	}
	for _, c := range cases {
		if got := CanTransition(c.from, c.to); got != c.ok {
			t.Errorf("%s -> %s: got %v, want %v", c.from, c.to, got, c.ok)
		}
	}
}

func TestWindows(t *testing.T) {
	cfg := Config{Enabled: true, SurveyDelayHours: 2, SurveyExpiryDays: 7}
	resolved := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	sched := ScheduledFor(resolved, cfg)
	if want := resolved.Add(2 * time.Hour); !sched.Equal(want) {
		t.Fatalf("ScheduledFor = %s, want %s", sched, want)
	}
	cases := []struct {
		name string
		now  time.Time
		late bool
	}{
		{"at send time", sched, false},
		{"a day late", sched.Add(24 * time.Hour), false},
		{"a second before the window closes", sched.Add(7*24*time.Hour - time.Second), false},
		{"window closed", sched.Add(7 * 24 * time.Hour), true},
		{"long after", sched.Add(30 * 24 * time.Hour), true},
	}
	for _, c := range cases {
		if got := WindowPassed(sched, cfg, c.now); got != c.late {
			t.Errorf("%s: WindowPassed = %v, want %v", c.name, got, c.late)
		}
	}
	exp := ExpiresAt(sched, cfg)
	sent := &db.Survey{Status: db.StatusSent, ExpiresAt: &exp}
	for _, c := range []struct {
		name    string
		s       *db.Survey
		now     time.Time
		expired bool
	}{
		{"before expiry", sent, exp.Add(-time.Second), false},
		{"at expiry", sent, exp, true},
		{"status expired", &db.Survey{Status: db.StatusExpired}, sched, true},
		{"pending has no link", &db.Survey{Status: db.StatusPending}, sched, false},
	} {
		if got := LinkExpired(c.s, c.now); got != c.expired {
			t.Errorf("%s: LinkExpired = %v, want %v", c.name, got, c.expired)
		}
	}
	if err := Answerable(&db.Survey{Status: db.StatusPending}, sched); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("a pending survey is not answerable: %v", err)
	}
}

func TestConfigPatchValidate(t *testing.T) {
	i := func(n int) *int { return &n }
	cases := []struct {
		name  string
		p     ConfigPatch
		field string // "" means valid
	}{
		{"empty", ConfigPatch{}, ""},
		{"delay min", ConfigPatch{SurveyDelayHours: i(1)}, ""},
		{"delay max", ConfigPatch{SurveyDelayHours: i(72)}, ""},
		{"delay 0", ConfigPatch{SurveyDelayHours: i(0)}, "survey_delay_hours"},
		{"delay 73", ConfigPatch{SurveyDelayHours: i(73)}, "survey_delay_hours"},
		{"expiry min", ConfigPatch{SurveyExpiryDays: i(1)}, ""},
		{"expiry max", ConfigPatch{SurveyExpiryDays: i(30)}, ""},
		{"expiry 0", ConfigPatch{SurveyExpiryDays: i(0)}, "survey_expiry_days"},
		{"expiry 31", ConfigPatch{SurveyExpiryDays: i(31)}, "survey_expiry_days"},
		{"expiry negative", ConfigPatch{SurveyExpiryDays: i(-1)}, "survey_expiry_days"},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		e := errs.As(err)
		if e == nil || e.Code != errs.Unprocessable || e.Fields[c.field] == "" {
			t.Errorf("%s: want a 422 naming %s, got %v", c.name, c.field, err)
		}
	}
}

func TestIntakeNormalize(t *testing.T) {
	now := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	future := now.Add(2 * time.Hour)
	ok := func() IntakeInput { return IntakeInput{ConversationID: "c1", ContactEmail: "jane@example.com"} }
	cases := []struct {
		name  string
		edit  func(*IntakeInput)
		field string
	}{
		{"valid", func(*IntakeInput) {}, ""},
		{"missing conversation", func(in *IntakeInput) { in.ConversationID = "" }, "conversation_id"},
		{"blank conversation", func(in *IntakeInput) { in.ConversationID = "   " }, "conversation_id"},
		{"long conversation", func(in *IntakeInput) { in.ConversationID = strings.Repeat("x", 256) }, "conversation_id"},
		{"NUL in conversation", func(in *IntakeInput) { in.ConversationID = "a\x00b" }, "conversation_id"},
		{"invalid UTF-8", func(in *IntakeInput) { in.ContactName = "\xff\xfe" }, "contact_name"},
		{"missing email", func(in *IntakeInput) { in.ContactEmail = "" }, "contact_email"},
		{"no at", func(in *IntakeInput) { in.ContactEmail = "jane.example.com" }, "contact_email"},
		{"no domain dot", func(in *IntakeInput) { in.ContactEmail = "jane@localhost" }, "contact_email"},
		{"display name", func(in *IntakeInput) { in.ContactEmail = "Jane <jane@example.com>" }, "contact_email"},
		{"two addresses", func(in *IntakeInput) { in.ContactEmail = "a@example.com,b@example.com" }, "contact_email"},
		{"far future", func(in *IntakeInput) { in.ResolvedAt = &future }, "resolved_at"},
		{"long agent", func(in *IntakeInput) { in.AgentID = strings.Repeat("a", 300) }, "agent_id"},
		{"long locale", func(in *IntakeInput) { in.Locale = strings.Repeat("e", 40) }, "locale"},
	}
	for _, c := range cases {
		in := ok()
		c.edit(&in)
		err := in.Normalize(now)
		if c.field == "" {
			if err != nil || in.ResolvedAt == nil || !in.ResolvedAt.Equal(now) {
				t.Errorf("%s: err %v, resolved_at %v", c.name, err, in.ResolvedAt)
			}
			continue
		}
		if e := errs.As(err); e == nil || e.Fields[c.field] == "" {
			t.Errorf("%s: want an error naming %s, got %v", c.name, c.field, err)
		}
	}
}

func TestParseRating(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{{"1", 1}, {"5", 5}, {"0", 0}, {"6", 0}, {"abc", 0}, {"4.5", 0}, {"", 0}, {" 3", 0}, {"05", 0}, {"-1", 0}} {
		got, err := ParseRating(c.in)
		if (c.want == 0) != (err != nil) || got != c.want {
			t.Errorf("ParseRating(%q) = %d, %v", c.in, got, err)
		}
	}
	for _, c := range []struct {
		in   string
		want int
	}{{"1", 1}, {"5", 5}, {"5.0", 5}, {"0", 0}, {"6", 0}, {`"5"`, 0}, {"4.5", 0}, {"null", 0}, {"", 0}, {"true", 0}, {"[5]", 0}, {"1e400", 0}} {
		got, err := ParseRatingJSON(json.RawMessage(c.in))
		if (c.want == 0) != (err != nil) || got != c.want {
			t.Errorf("ParseRatingJSON(%s) = %d, %v", c.in, got, err)
		}
	}
}

func TestValidateFeedback(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", "", true},
		{"5000 characters", strings.Repeat("é", 5000), true},
		{"5001 characters", strings.Repeat("a", 5001), false},
		{"NUL", "a\x00", false},
	} {
		if err := ValidateFeedback(c.in); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestParseToken(t *testing.T) {
	tok := NewToken("ten_abc")
	tenant, hash, err := parseToken(tok)
	if err != nil || tenant != "ten_abc" || len(hash) != 32 {
		t.Fatalf("parseToken(NewToken) = %q %x %v", tenant, hash, err)
	}
	for _, bad := range []string{"", "abc", "ten_abc", ".secret", "ten_abc.short", "x_abc." + strings.Repeat("a", 32), "ten_a." + strings.Repeat("a", 200)} {
		if _, _, err := parseToken(bad); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("parseToken(%q) = %v, want not found", bad, err)
		}
	}
}

// TestRecordClick: the scanner rule's count is the different ratings
// clicked within ScannerWin up to the click, this one included.
func TestRecordClick(t *testing.T) {
	now := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	never := time.Unix(0, 0).UTC()
	for _, c := range []struct {
		name   string
		last   []time.Time
		rating int
		at     time.Time
		want   []time.Time
		n      int
	}{
		{"first click", nil, 4, now, []time.Time{never, never, never, now, never}, 1},
		{"same rating again", []time.Time{never, never, never, ago(time.Second), never}, 4, now, []time.Time{never, never, never, now, never}, 1},
		{"second rating", []time.Time{never, never, never, ago(time.Second), never}, 2, now, []time.Time{never, now, never, ago(time.Second), never}, 2},
		{"third rating", []time.Time{ago(20 * time.Second), never, never, ago(time.Second), never}, 5, now,
			[]time.Time{ago(20 * time.Second), never, never, ago(time.Second), now}, 3},
		{"a click just inside the window counts", []time.Time{ago(ScannerWin), ago(time.Second), never, never, never}, 3, now,
			[]time.Time{ago(ScannerWin), ago(time.Second), now, never, never}, 3},
		{"older clicks do not", []time.Time{ago(ScannerWin + time.Microsecond), ago(time.Hour), never, ago(time.Second), never}, 3, now,
			[]time.Time{ago(ScannerWin + time.Microsecond), ago(time.Hour), now, ago(time.Second), never}, 2},
		{"a click stamped before the kept one keeps the later time", []time.Time{never, never, now, never, never}, 3, ago(time.Second),
			[]time.Time{never, never, now, never, never}, 1},
		{"five ratings", []time.Time{now, now, now, now, never}, 5, now, []time.Time{now, now, now, now, now}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := slices.Clone(c.last)
			got, n := RecordClick(c.last, c.rating, c.at)
			if n != c.n || !slices.EqualFunc(got, c.want, time.Time.Equal) {
				t.Fatalf("RecordClick = %v, %d; want %v, %d", got, n, c.want, c.n)
			}
			if !slices.EqualFunc(c.last, before, time.Time.Equal) {
				t.Fatal("RecordClick changed the clicks it was given")
			}
		})
	}
}
