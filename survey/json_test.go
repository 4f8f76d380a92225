package survey_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/csat/csat/db"
	"github.com/csat/csat/survey"
)

// pieces of the generated text: what JSON must escape, what HTML escaping
// adds, invalid UTF-8 and multi-byte runes.
var pieces = []string{"", "a", "Zz09", " ", `"`, `\`, "/", "<", ">", "&", "<script>", "\x00", "\x01", "\b", "\f", "\n",
	"\r", "\t", "\x1f", "\x7f", "é", "ü", "✓", "😀", "\u2028", "\u2029", "\u2027", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80",
	"\ufffd", "%", "'", "{}[]", "ak_live_", "null"}

func randText(r *rand.Rand) string {
	var b []byte
	for range r.IntN(6) {
		b = append(b, pieces[r.IntN(len(pieces))]...)
	}
	return string(b)
}

func randTime(r *rand.Rand) time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("X", -7*3600-30*60), time.FixedZone("Y", 14*3600)}
	return time.Unix(r.Int64N(4e9)-1e9, r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
}

func randSurvey(r *rand.Rand) db.Survey {
	opt := func() *time.Time {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return &time.Time{} // zero: null too
		}
		t := randTime(r)
		return &t
	}
	s := db.Survey{TenantID: randText(r), ID: randText(r), ConversationID: randText(r), ContactEmail: randText(r),
		ContactName: randText(r), AgentID: randText(r), TeamID: randText(r), Channel: randText(r), Locale: randText(r),
		Status: randText(r), Flagged: r.IntN(2) == 0, ResolvedAt: randTime(r), ScheduledFor: randTime(r),
		SentAt: opt(), ExpiresAt: opt(), RespondedAt: opt(), ClaimedAt: opt(), CreatedAt: randTime(r), UpdatedAt: randTime(r)}
	if r.IntN(4) == 0 {
		s.ResolvedAt = time.Time{}
	}
	if r.IntN(2) == 0 {
		n := r.IntN(11) - 5
		s.Rating = &n
	}
	if r.IntN(2) == 0 {
		fb := randText(r)
		s.Feedback = &fb
	}
	return s
}

// marshal is what encoding/json writes for a survey.
func marshal(t testing.TB, s *db.Survey) []byte {
	t.Helper()
	want, err := json.Marshal(survey.ToJSON(s))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestAppendJSONMatchesEncodingJSON: the hand-written encoder writes every
// survey byte for byte as encoding/json writes ToJSON's struct.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 20))
	surveys := []db.Survey{{}} // every field zero
	for range 20_000 {
		surveys = append(surveys, randSurvey(r))
	}
	for i := range surveys {
		got := survey.AppendJSON(nil, &surveys[i])
		if want := marshal(t, &surveys[i]); !bytes.Equal(got, want) {
			t.Fatalf("survey %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// FuzzAppendJSON: any text in any field comes out as encoding/json has it.
func FuzzAppendJSON(f *testing.F) {
	for _, p := range pieces {
		f.Add(p, p+"x", int64(0))
	}
	f.Add("a\u2028b<&>", "\xff\xfe", int64(-1))
	f.Fuzz(func(t *testing.T, a, b string, unix int64) {
		at := time.Unix(unix%(1<<36), 0)
		s := db.Survey{ID: a, ConversationID: b, ContactEmail: a + b, ContactName: b, Status: a, Feedback: &b,
			ResolvedAt: at, CreatedAt: at, SentAt: &at}
		if got, want := survey.AppendJSON(nil, &s), marshal(t, &s); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkSurveyJSON compares the two encoders on one survey.
//
//	go test -run '^$' -bench SurveyJSON -benchmem ./survey/
func BenchmarkSurveyJSON(b *testing.B) {
	s := randSurvey(rand.New(rand.NewPCG(1, 2)))
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			_ = marshal(b, &s)
		}
	})
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = survey.AppendJSON(buf[:0], &s)
		}
	})
}
