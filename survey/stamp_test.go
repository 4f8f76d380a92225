package survey

import (
	"reflect"
	"testing"

	"github.com/csat/csat/db"
)

// stampConfigs are the shapes of email a tenant can ask for: the default
// texts, and templates with every variable in the subject, the message
// (several paragraphs) and the button labels.
var stampConfigs = map[string]*db.Config{
	"defaults": {},
	"custom": {
		BrandName: "Acme & Co", LogoURL: "https://cdn.example.com/logo.png", AccentColor: "#0a7d4f",
		EmailSubject: "{{contact_name}}, how did {{tenant_name}} do on #{{conversation_id}}?",
		EmailMessage: "Hi {{contact_name}},\n\nyou asked about {{ conversation_id }}.\nWe'd love to hear back.\n\n\n  Thanks, {{tenant_name}}",
		ButtonLabels: []string{"Bad {{contact_name}}", "Meh", "{{conversation_id}}", "Good", "Great {{contact_name}}!"},
	},
}

// checkStamp renders sv's email through a batch's stamps and in full, and
// fails unless they are the same message.
func checkStamp(t *testing.T, e *emailStamps, sv *db.Survey, token, unsub string) {
	t.Helper()
	got, err := e.render(sv, token, unsub)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.s.renderFor(e.tenant, e.cfg, sv, token, unsub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("name %q conversation %q locale %q: stamped email differs from the render\nsubject %q\n   want %q\nhtml %q\nwant %q\ntext %q\nwant %q",
			sv.ContactName, sv.ConversationID, sv.Locale, got.Subject, want.Subject, got.HTML, want.HTML, got.Text, want.Text)
	}
}

// A stamped email is the email a full render gives, whatever the contact's
// name, conversation id, language and the tenant's templates: values a
// stamp cannot take as they are are rendered in full, and the stamps of
// one batch serve its emails in any order.
func TestStampMatchesRender(t *testing.T) {
	s := &Service{BaseURL: "https://csat.example.com/"}
	tenant := &db.Tenant{ID: "ten_1", Name: "Acme"}
	names := []string{
		"Ana", "José García", "Anne-Marie O. Smith", "李小龙", "", "O'Brien", "Tom & Jerry", "<b>Eve</b>",
		"a  b", " lead", "trail ", "x\ny", "two\n\nparas", "nb\u00a0sp", "tab\tbed", "a+b", "k=v", "`tick`",
		`"quoted"`, "{{contact_name}}", "{{tenant_name}}", "zq", "\x00nul", "émoji 🎉", "dir\u202eltr",
	}
	convs := []string{"c-1042", "", "ticket #77/3", "a&b", "x y", "12:30 (urgent)"}
	locales := []string{"", "en", "de", "fr-CA", "pt", "xx"}
	tokens := [][2]string{
		{NewToken("ten_1"), NewToken("ten_1")},
		{"ten_1.abc+def", "ten_1.u&v"}, // not tokens we make: rendered in full
	}
	for cname, cfg := range stampConfigs {
		t.Run(cname, func(t *testing.T) {
			e := s.newEmailStamps(tenant, cfg)
			i := 0
			for _, name := range names {
				for _, conv := range convs {
					loc := locales[i%len(locales)]
					tok := tokens[i%7/6]
					i++
					sv := &db.Survey{TenantID: "ten_1", ID: "csat_x", ContactEmail: "c@example.com", ContactName: name, ConversationID: conv, Locale: loc}
					checkStamp(t, e, sv, tok[0], tok[1])
				}
			}
			if len(e.byKey) < 2 {
				t.Fatalf("%d stamps for %d emails: the stamps were not used", len(e.byKey), i)
			}
		})
	}
}

// stampable accepts what reads the same after escaping and whitespace
// folding, and nothing else.
func TestStampable(t *testing.T) {
	for v, want := range map[string]bool{
		"Ana": true, "José García": true, "c-1042": true, "ticket #77/3": true, "ten_1.AbC-_9": true, "李小龙": true,
		"": false, "O'Brien": false, "a&b": false, "<b>": false, "a  b": false, " a": false, "a ": false,
		"a\nb": false, "a\tb": false, "nb\u00a0sp": false, "a+b": false, `"q"`: false, "k=v": false, "\x00": false,
		"\u2028": false, "\ufffd": false,
	} {
		if got := stampable(v); got != want {
			t.Errorf("stampable(%q) = %v, want %v", v, got, want)
		}
	}
}

// FuzzStamp: any name and conversation id, stamped or not, give the email
// a full render gives.
func FuzzStamp(f *testing.F) {
	f.Add("Ana", "c-1", "en")
	f.Add("O'Brien", "", "de")
	f.Add("", "x y", "fr")
	s := &Service{BaseURL: "https://csat.example.com"}
	tenant := &db.Tenant{ID: "ten_1", Name: "Acme"}
	f.Fuzz(func(t *testing.T, name, conv, locale string) {
		for _, cfg := range stampConfigs {
			e := s.newEmailStamps(tenant, cfg)
			for _, n := range []string{"Ana", name} { // a stamp made by another email, then its own
				sv := &db.Survey{TenantID: "ten_1", ID: "csat_x", ContactEmail: "c@example.com", ContactName: n, ConversationID: conv, Locale: locale}
				checkStamp(t, e, sv, NewToken("ten_1"), NewToken("ten_1"))
			}
		}
	})
}

// BenchmarkEmail compares a batch's email rendered in full with the same
// email stamped.
func BenchmarkEmail(b *testing.B) {
	s := &Service{BaseURL: "https://csat.example.com"}
	e := s.newEmailStamps(&db.Tenant{ID: "ten_1", Name: "Acme"}, stampConfigs["custom"])
	sv := &db.Survey{TenantID: "ten_1", ID: "csat_x", ContactEmail: "c@example.com", ContactName: "José García", ConversationID: "c-1042", Locale: "de"}
	token, unsub := NewToken("ten_1"), NewToken("ten_1")
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.renderFor(e.tenant, e.cfg, sv, token, unsub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stamped", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.render(sv, token, unsub); err != nil {
				b.Fatal(err)
			}
		}
	})
}
