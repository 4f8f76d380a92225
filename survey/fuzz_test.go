package survey

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/csat/csat/db"
	"github.com/csat/csat/errs"
)

// Fuzz targets for every parser of outside input in the core. `make test`
// runs their seeds; `make fuzz` runs each for FUZZTIME.

// clientError fails unless err is a domain error a client caused: the
// adapters turn it into a 4xx, never a 500.
func clientError(t *testing.T, err error, codes ...errs.Code) {
	t.Helper()
	c := errs.CodeOf(err)
	for _, want := range codes {
		if c == want {
			return
		}
	}
	t.Fatalf("error %v has code %q, want one of %v", err, c, codes)
}

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"", ".", "ten_", "ten_.", "ten_abc.0123456789012345678901234567890123",
		"ten_06h15ppgxhcpnwexxb4967x5vc.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ten_x'; DROP TABLE surveys; --.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"ten_a.b.AAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("ten_", 40) + "." + strings.Repeat("A", 32), "ten_\x00.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"ten_é.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "TEN_abc.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		tenantID, hash, err := parseToken(token)
		if err != nil {
			clientError(t, err, errs.NotFound)
			return
		}
		if !db.ValidTenantID(tenantID) || len(token) > 128 || len(hash) != 32 || !strings.HasPrefix(token, tenantID+".") {
			t.Fatalf("parseToken(%q) accepted tenant %q", token, tenantID)
		}
	})
}

func FuzzParseRating(f *testing.F) {
	for _, s := range []string{"", "0", "1", "5", "6", "05", " 3", "3 ", "-1", "1e0", "３", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRating(s)
		if err != nil {
			clientError(t, err, errs.Invalid)
			return
		}
		if !ValidRating(r) || s != string(rune('0'+r)) {
			t.Fatalf("ParseRating(%q) = %d", s, r)
		}
	})
}

func FuzzParseRatingJSON(f *testing.F) {
	for _, s := range []string{"", "null", "1", "5", "5.0", "4.5", `"4"`, "1e0", "-0", "6", "1e400", "[1]", "{}", "true", " 3 ", "0x3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParseRatingJSON(json.RawMessage(raw))
		if err != nil {
			clientError(t, err, errs.Unprocessable, errs.Invalid)
			return
		}
		if !ValidRating(r) {
			t.Fatalf("ParseRatingJSON(%q) = %d", raw, r)
		}
	})
}

func FuzzValidateFeedback(f *testing.F) {
	for _, s := range []string{"", "great", strings.Repeat("x", MaxFeedback), strings.Repeat("x", MaxFeedback+1), "\xff\xfe", "a\x00b", "<script>alert(1)</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateFeedback(s); err != nil {
			clientError(t, err, errs.Unprocessable, errs.Invalid)
			return
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxFeedback {
			t.Fatalf("feedback of %d runes (valid UTF-8: %v) accepted", utf8.RuneCountInString(s), utf8.ValidString(s))
		}
	})
}

func FuzzIntakeNormalize(f *testing.F) {
	f.Add("conv-1", "jane@example.com", "Jane", "agent", "team", "email", "en-US", int64(0), false)
	f.Add(" ", "not-an-email", "", "", "", "", "", int64(0), false)
	f.Add("c", "a@b", "\xff", "", "", "", strings.Repeat("l", 40), int64(-1e12), true)
	f.Add(strings.Repeat("c", 256), "\"quoted\"@example.com", "", "", "", "", "", int64(7200), true)
	f.Add("c", "Jane <jane@example.com>", "", "", "", "", "", int64(1<<62), true)
	now := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, conv, email, name, agent, team, channel, locale string, resolvedOffset int64, hasResolved bool) {
		in := IntakeInput{ConversationID: conv, ContactEmail: email, ContactName: name, AgentID: agent, TeamID: team, Channel: channel, Locale: locale}
		if hasResolved {
			r := now.Add(time.Duration(resolvedOffset) * time.Second)
			in.ResolvedAt = &r
		}
		if err := in.Normalize(now); err != nil {
			clientError(t, err, errs.Unprocessable, errs.Invalid)
			return
		}
		if in.ConversationID == "" || !ValidEmail(in.ContactEmail) || in.ResolvedAt == nil ||
			in.ResolvedAt.After(now.Add(MaxFutureRes)) || in.ResolvedAt.Location() != time.UTC {
			t.Fatalf("accepted %+v", in)
		}
		for _, s := range []string{in.ConversationID, in.ContactEmail, in.ContactName, in.AgentID, in.TeamID, in.Channel, in.Locale} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || utf8.RuneCountInString(s) > MaxIDLength {
				t.Fatalf("accepted text %q", s)
			}
		}
	})
}

func FuzzConfigPatch(f *testing.F) {
	f.Add(true, 1, 1, uint8(7))
	f.Add(false, 0, 31, uint8(6))
	f.Add(true, 72, 30, uint8(7))
	f.Add(true, -1<<31, 1<<31, uint8(3))
	f.Fuzz(func(t *testing.T, enabled bool, delay, expiry int, set uint8) {
		var p ConfigPatch
		if set&1 != 0 {
			p.Enabled = &enabled
		}
		if set&2 != 0 {
			p.SurveyDelayHours = &delay
		}
		if set&4 != 0 {
			p.SurveyExpiryDays = &expiry
		}
		if err := p.Validate(); err != nil {
			clientError(t, err, errs.Unprocessable)
			return
		}
		c := &db.Config{Enabled: true, SurveyDelayHours: 2, SurveyExpiryDays: 7}
		p.Apply(c)
		if c.SurveyDelayHours < 1 || c.SurveyDelayHours > 72 || c.SurveyExpiryDays < 1 || c.SurveyExpiryDays > 30 {
			t.Fatalf("patch %+v made config %+v", p, c)
		}
	})
}

// FuzzAnalyticsQuery covers the date and timezone parsing of analytics.
func FuzzAnalyticsQuery(f *testing.F) {
	for _, s := range [][3]string{
		{"", "", ""}, {"2026-03-01", "2026-03-08", "Europe/Berlin"}, {"2026-03-08", "2026-03-01", "UTC"},
		{"2025-01-01", "2026-12-31", ""}, {"2026-02-30", "", ""}, {"2026-3-1", "", ""}, {"", "", "Local"},
		{"", "", "../../etc/passwd"}, {"", "", "America/New_York"}, {"", "", "EST"}, {"", "", "Asia/Kathmandu"},
		{"2026-03-29", "2026-03-29", "Europe/Berlin"}, {"0000-01-01", "9999-12-31", ""}, {"", "", "/usr/share/zoneinfo/UTC"},
		{"", "", "Etc/GMT+12"}, {"", "", strings.Repeat("A/", 100)},
	} {
		f.Add(s[0], s[1], s[2], "agent")
	}
	now := time.Date(2026, 3, 8, 23, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, start, end, tz, agent string) {
		q := AnalyticsQuery{StartDate: start, EndDate: end, Timezone: tz, Filter: AnalyticsFilter{AgentID: agent}}
		r, err := q.resolve(now)
		if err != nil {
			clientError(t, err, errs.Invalid, errs.Unprocessable)
			return
		}
		if r.start.After(r.end) || daysBetween(r.start, r.end)+1 > MaxAnalyticsDays || !r.to().After(r.from()) {
			t.Fatalf("%+v resolved to %v..%v", q, r.start, r.end)
		}
		// The normalized query resolves to the same range.
		again, err := r.q.resolve(now)
		if err != nil || !again.start.Equal(r.start) || !again.end.Equal(r.end) {
			t.Fatalf("normalized %+v does not resolve again: %v", r.q, err)
		}
		if _, err := r.buckets(Week); err != nil {
			clientError(t, err, errs.Invalid, errs.Unprocessable)
		}
	})
}
