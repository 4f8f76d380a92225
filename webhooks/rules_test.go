package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/csat/csat/errs"
)

func TestBlocked(t *testing.T) {
	for _, c := range []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true},
		{"10.0.0.1", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"169.254.0.1", true}, {"fe80::1", true},
		{"fd00::1", true}, {"fd00:ec2::254", true}, {"fc00::1", true},
		{"100.64.0.1", true}, {"100.100.100.200", true}, {"0.0.0.0", true}, {"::", true},
		{"224.0.0.1", true}, {"ff02::1", true}, {"255.255.255.255", true}, {"198.18.0.1", true},
		{"::ffff:127.0.0.1", true}, {"::ffff:10.0.0.1", true}, {"64:ff9b::a00:1", true}, {"2002:a00:1::", true},
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"172.32.0.1", false}, {"100.128.0.1", false},
		{"2606:4700:4700::1111", false}, {"::ffff:8.8.8.8", false},
	} {
		if got := Blocked(netip.MustParseAddr(c.ip)); got != c.blocked {
			t.Errorf("Blocked(%s) = %v, want %v", c.ip, got, c.blocked)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, url    string
		allowPrivate bool
		ok           bool
	}{
		{"public-ip", "https://8.8.8.8/hook", false, true},
		{"public-ip-port-query", "http://1.1.1.1:8443/a?b=c", false, true},
		{"loopback", "http://127.0.0.1/", false, false},
		{"localhost-resolves-to-loopback", "http://localhost:9000/", false, false},
		{"metadata", "http://169.254.169.254/latest/meta-data/", false, false},
		{"private-v6", "http://[fd00::1]/", false, false},
		{"mapped-loopback", "http://[::ffff:127.0.0.1]/", false, false},
		{"cgnat", "http://100.64.1.1/", false, false},
		{"unresolvable", "https://no-such-host.invalid/", false, false},
		{"scheme", "ftp://8.8.8.8/", false, false},
		{"javascript", "javascript:alert(1)", false, false},
		{"no-host", "http:///path", false, false},
		{"credentials", "https://u:p@8.8.8.8/", false, false},
		{"fragment", "https://8.8.8.8/#x", false, false},
		{"empty", "", false, false},
		{"too-long", "https://8.8.8.8/" + strings.Repeat("a", MaxURLLen), false, false},
		{"loopback-allowed", "http://127.0.0.1:8080/", true, true},
		{"localhost-allowed", "http://localhost:8080/", true, true},
		{"scheme-still-checked", "gopher://127.0.0.1/", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckURL(ctx, c.url, c.allowPrivate, nil)
			if (err == nil) != c.ok {
				t.Fatalf("CheckURL(%q) = %v, want ok=%v", c.url, err, c.ok)
			}
			if err != nil && (errs.CodeOf(err) != errs.Invalid || errs.As(err).Fields["url"] == "") {
				t.Fatalf("want an invalid_argument error on url, got %v", err)
			}
		})
	}
}

// The dialer checks the address it connects to, after DNS: a name that
// resolves to loopback (DNS rebinding) is refused at connect time.
func TestClientRefusesPrivateAtConnect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	for _, u := range []string{srv.URL, "http://localhost" + port} {
		_, err := NewHTTPClient(false, 2*time.Second).Post(u, "application/json", nil)
		if !errors.Is(err, errBlocked) || transportError(err) != "address not allowed" {
			t.Errorf("%s: want the address refused, got %v", u, err)
		}
	}
	res, err := NewHTTPClient(true, 2*time.Second).Post(srv.URL, "application/json", nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("allowed: %v", err)
	}
	res.Body.Close()
}

func TestClientFollowsNoRedirect(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			hit = true
			return
		}
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	res, err := NewHTTPClient(true, 2*time.Second).Post(srv.URL+"/start", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || hit {
		t.Fatalf("status %d, redirect followed: %v", res.StatusCode, hit)
	}
}

func TestSignAndVerify(t *testing.T) {
	at := time.Unix(1767225600, 0)
	body := []byte(`{"id":"evt_1","type":"csat.config.updated"}`)
	m := hmac.New(sha256.New, []byte("whsec_test"))
	m.Write([]byte("1767225600." + string(body)))
	want := "t=1767225600,v1=" + hex.EncodeToString(m.Sum(nil))
	if got := Sign("whsec_test", at, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	for _, c := range []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		want                 error
	}{
		{"valid", "whsec_test", want, body, at.Add(time.Minute), nil},
		{"wrong-secret", "whsec_other", want, body, at, ErrBadSignature},
		{"tampered-body", "whsec_test", want, []byte(`{"id":"evt_2"}`), at, ErrBadSignature},
		{"replayed-late", "whsec_test", want, body, at.Add(10 * time.Minute), ErrStale},
		{"tampered-time", "whsec_test", strings.Replace(want, "t=1767225600", "t=1767225900", 1), body, at, ErrBadSignature},
		{"no-v1", "whsec_test", "t=1767225600", body, at, ErrBadSignature},
		{"garbage", "whsec_test", "nonsense", body, at, ErrBadSignature},
	} {
		if err := Verify(c.secret, c.header, c.body, c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSealer(t *testing.T) {
	a, _ := newSealer("a-production-key-of-at-least-32-characters")
	b, _ := newSealer("another-production-key-of-32-characters!")
	sealed := a.seal("whsec_x", "ten_1", "whe_1")
	if got, err := a.open(sealed, "ten_1", "whe_1"); err != nil || got != "whsec_x" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if strings.Contains(string(sealed), "whsec_x") {
		t.Fatal("sealed secret holds the plaintext")
	}
	if _, err := a.open(sealed, "ten_1", "whe_2"); err == nil {
		t.Error("a sealed secret opened for another endpoint")
	}
	if _, err := b.open(sealed, "ten_1", "whe_1"); err == nil {
		t.Error("a sealed secret opened with another key")
	}
}

func TestEventPatterns(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string // joined, or "error"
	}{
		{nil, "csat.*"},
		{[]string{"csat.survey.completed"}, "csat.survey.completed"},
		{[]string{"csat.survey.*", "csat.config.updated", "csat.survey.*"}, "csat.survey.*,csat.config.updated"},
		{[]string{"*"}, "*"},
		{[]string{"csat.survey.rated"}, "error"},
		{[]string{"survey.rating_cleared"}, "error"},
		{[]string{"csat"}, "error"},
		{[]string{"other.*"}, "error"},
	} {
		got, err := NormalizePatterns(c.in)
		s := strings.Join(got, ",")
		if err != nil {
			s = "error"
			if errs.CodeOf(err) != errs.Unprocessable {
				t.Errorf("%v: error code %s", c.in, errs.CodeOf(err))
			}
		}
		if s != c.want {
			t.Errorf("NormalizePatterns(%v) = %s, want %s", c.in, s, c.want)
		}
	}
	for _, c := range []struct {
		pattern, typ string
		match        bool
	}{
		{"csat.*", "csat.survey.sent", true}, {"csat.*", "csat.config.updated", true},
		{"csat.survey.*", "csat.config.updated", false}, {"csat.survey.sent", "csat.survey.sent", true},
		{"csat.survey.sent", "csat.survey.sent2", false}, {"csat.surv*", "csat.survey.sent", false},
	} {
		if Match(c.pattern, c.typ) != c.match {
			t.Errorf("Match(%s, %s) != %v", c.pattern, c.typ, c.match)
		}
	}
	if IsEventType("survey.rating_cleared") || !IsEventType("csat.survey.expired") {
		t.Error("IsEventType")
	}
}

// The default schedule retries for about the 24 h window: delays double
// from 30 s up to 4 h, each within ±50% jitter.
func TestBackoff(t *testing.T) {
	s := &Service{Cfg: Config{}.withDefaults()}
	var total time.Duration
	attempts := 0
	for n := 1; total < 24*time.Hour; n++ {
		nominal := min(30*time.Second<<(n-1), 4*time.Hour)
		d := s.Backoff(n)
		if d < nominal/2 || d > nominal*3/2 {
			t.Fatalf("Backoff(%d) = %s, want within 50%% of %s", n, d, nominal)
		}
		total += nominal
		attempts++
	}
	if attempts < 10 || attempts > 20 {
		t.Errorf("%d retries fill 24 h", attempts)
	}
	fast := &Service{Cfg: Config{RetryBase: 50 * time.Millisecond}.withDefaults()}
	if d := fast.Backoff(1); d > 75*time.Millisecond {
		t.Errorf("RetryBase ignored: %s", d)
	}
}

func TestLoadConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := LoadConfig(env(nil))
	if err != nil || c.AllowPrivate || c.RetryBase != DefaultRetryBase || c.RetryWindow != 24*time.Hour ||
		c.DisableAfter != 72*time.Hour || c.Timeout != 10*time.Second {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = LoadConfig(env(map[string]string{"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_BASE": "100ms"}))
	if err != nil || !c.AllowPrivate || c.RetryBase != 100*time.Millisecond {
		t.Fatalf("set: %+v %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"WEBHOOK_SECRET_KEY": "short"}, {"WEBHOOK_ALLOW_PRIVATE": "yes please"},
		{"WEBHOOK_RETRY_BASE": "soon"}, {"WEBHOOK_DISABLE_AFTER": "-1h"},
	} {
		if _, err := LoadConfig(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
