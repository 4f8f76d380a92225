package hardening

import (
	"bytes"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

// TestDumpHoldsNoSecrets uses an API key and a survey token, then dumps
// the database with pg_dump and greps the dump: neither the key nor the
// token (nor their random parts) may appear, only their hashes.
func TestDumpHoldsNoSecrets(t *testing.T) {
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Skip("pg_dump not installed")
	}
	tg := newTarget(t)
	if r := tg.s.Do(t, "GET", "/api/v1/csat/surveys/"+tg.surveyID, tg.key, nil); r.Status != 200 {
		t.Fatalf("use the key: %d %s", r.Status, r.Body)
	}
	if r := tg.s.Do(t, "GET", "/api/v1/csat/rate?rating=4&token="+url.QueryEscape(tg.token), "", nil); r.Status != 200 {
		t.Fatalf("use the token: %d %s", r.Status, r.Body)
	}
	if r := tg.s.Do(t, "POST", "/api/v1/csat/"+tg.token+"/submit", "", map[string]any{"rating": 5, "feedback": "dump-marker"}); r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	out, err := exec.Command(pgDump, "--no-owner", "--dbname", tg.s.DSN).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("dump-marker")) || !bytes.Contains(out, []byte(tg.surveyID)) {
		t.Fatalf("the dump lacks the survey (%d bytes): wrong database?", len(out))
	}
	secretOfToken := tg.token[strings.LastIndexByte(tg.token, '.')+1:]
	for name, s := range map[string]string{
		"api key":                  tg.key,
		"api key without prefix":   strings.TrimPrefix(tg.key, "ak_live_"),
		"survey token":             tg.token,
		"random part of the token": secretOfToken,
	} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("the dump contains the %s", name)
		}
	}
}
