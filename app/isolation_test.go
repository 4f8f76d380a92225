package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// TestTenantIsolation: with two tenants' data, tenant B's key never reads,
// changes or counts tenant A's, on any route; A's links only reach A's survey.
func TestTenantIsolation(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
	ctx := context.Background()
	tenantA, keyA := s.NewTenant(t, "Tenant A")
	tenantB, keyB := s.NewTenant(t, "Tenant B")
	idA := intake(t, s, keyA, "shared-conv", "a@example.com")["id"].(string)
	if _, err := s.App.Svc.Send(ctx, tenantA, idA); err != nil {
		t.Fatal(err)
	}
	rate, _ := rateLinks(t, s.SMTP.WaitFor(t, "a@example.com", 1, 0)[0])
	tokenA := tokenOf(t, rate[0])

	// Reads.
	if r := s.Do(t, "GET", "/api/v1/csat/surveys/"+idA, keyB, nil); r.Status != 404 {
		t.Errorf("B read A's survey: %d", r.Status)
	}
	list := s.Do(t, "GET", "/api/v1/csat/surveys", keyB, nil).Map(t)
	if list["total"] != 0.0 || len(list["data"].([]any)) != 0 {
		t.Errorf("B's list shows A's surveys: %v", list)
	}
	if r := s.Do(t, "GET", "/v1/csat/surveys/"+idA, keyB, nil); r.Status != 404 {
		t.Errorf("B read A's survey on /v1: %d", r.Status)
	}

	// Writes: the same conversation id is B's own survey, not A's.
	idB := intake(t, s, keyB, "shared-conv", "b@example.com")["id"].(string)
	if idB == idA {
		t.Fatal("B's intake returned A's survey")
	}
	if r := s.Do(t, "PUT", "/api/v1/csat/config", keyB, map[string]any{"enabled": false, "survey_delay_hours": 9}); r.Status != 200 {
		t.Fatalf("B config: %d", r.Status)
	}
	cfgA := s.Do(t, "GET", "/api/v1/csat/config", keyA, nil).Map(t)
	if cfgA["enabled"] != true || cfgA["survey_delay_hours"] != 2.0 {
		t.Errorf("B's config change reached A: %v", cfgA)
	}
	listA := s.Do(t, "GET", "/api/v1/csat/surveys", keyA, nil).Map(t)
	if listA["total"] != 1.0 || listA["data"].([]any)[0].(map[string]any)["id"] != idA {
		t.Errorf("A's list: %v", listA)
	}

	// Public links: A's token with B's tenant id in front finds nothing.
	secretPart := tokenA[strings.LastIndexByte(tokenA, '.'):]
	if r := s.Do(t, "GET", "/api/v1/csat/rate?token="+tenantB+secretPart+"&rating=1", "", nil); r.Status != 404 {
		t.Errorf("A's secret under B's tenant: %d", r.Status)
	}
	if r := s.Do(t, "POST", "/api/v1/csat/"+tenantB+secretPart+"/submit", "", map[string]any{"rating": 1}); r.Status != 404 {
		t.Errorf("A's secret under B's tenant (submit): %d", r.Status)
	}
	if sv := getSurvey(t, s, tenantA, idA); sv.Rating != nil {
		t.Errorf("A's survey rated through B: %v", *sv.Rating)
	}
	// The service never mixes them up at the store either.
	if _, err := db.GetSurvey(ctx, s.Admin, tenantB, idA); err == nil {
		t.Error("db.GetSurvey found A's survey under B's tenant")
	}
}
