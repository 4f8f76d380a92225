package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/csat/csat/tenants"
	"github.com/csat/csat/testenv"
)

const endpointFields = `id url description eventTypes enabled failingSince disabledAt disabledReason createdAt updatedAt`

// startHooks runs the API role only (no worker), so deliveries stay
// pending and the test sees exactly what the mutations stored.
func startHooks(t *testing.T) *testenv.Service {
	return testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api", "WEBHOOK_ALLOW_PRIVATE": "true"}})
}

var hookScopes = []string{tenants.ScopeRead, tenants.ScopeWrite, tenants.ScopeConfigWrite, tenants.ScopeWebhooks}

// TestWebhookEndpoints: create, list, update, deliveries, redeliver,
// rotate and delete through GraphQL, with the scopes REST uses.
func TestWebhookEndpoints(t *testing.T) {
	s := startHooks(t)
	aID, key := s.NewTenant(t, "A", hookScopes...)
	readKey, err := s.App.Tenants.CreateKey(context.Background(), aID, []string{tenants.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}

	create := `mutation($in: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $in) { secret endpoint { ` + endpointFields + ` } } }`
	in := map[string]any{"url": "http://127.0.0.1:9/hook", "eventTypes": []string{"csat.config.updated"}, "description": " ops "}
	if r := gql(t, s, readKey.Key, create, map[string]any{"in": in}); r.code() != "FORBIDDEN" {
		t.Fatalf("create with csat:read only: %+v", r.Errors)
	}
	bad := gql(t, s, key, create, map[string]any{"in": map[string]any{"url": "http://127.0.0.1:9/", "eventTypes": []string{"csat.nope"}}})
	if bad.code() != "BAD_USER_INPUT" || dig(bad.Errors[0].Extensions, "fields", "event_types") == nil {
		t.Fatalf("unknown event type: %+v", bad.Errors)
	}
	d := mustGQL(t, s, key, create, map[string]any{"in": in})
	ep := dig(d, "createWebhookEndpoint", "endpoint").(map[string]any)
	secret, _ := dig(d, "createWebhookEndpoint", "secret").(string)
	id, _ := ep["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(id, "whe_") || ep["description"] != "ops" || ep["enabled"] != true ||
		ep["url"] != "http://127.0.0.1:9/hook" || ep["disabledAt"] != nil {
		t.Fatalf("created %v (secret %q)", ep, secret)
	}

	// Listing needs only csat:read; the secret is not a field of an endpoint.
	d = mustGQL(t, s, readKey.Key, `{ webhookEndpoints { id eventTypes } }`, nil)
	if l := d["webhookEndpoints"].([]any); len(l) != 1 || dig(l[0], "id") != id {
		t.Fatalf("list %v", d)
	}
	if r := gql(t, s, key, `{ webhookEndpoints { secret } }`, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("an endpoint's secret is readable: %+v", r)
	}

	update := `mutation($id: ID!, $in: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $in) { ` + endpointFields + ` } }`
	if r := gql(t, s, readKey.Key, update, map[string]any{"id": id, "in": map[string]any{"enabled": false}}); r.code() != "FORBIDDEN" {
		t.Fatalf("update with csat:read only: %+v", r.Errors)
	}
	if r := gql(t, s, key, update, map[string]any{"id": id, "in": map[string]any{"eventTypes": []string{}}}); r.code() != "BAD_USER_INPUT" ||
		dig(r.Errors[0].Extensions, "fields", "event_types") == nil {
		t.Fatalf("empty event types: %+v", r.Errors)
	}
	d = mustGQL(t, s, key, update, map[string]any{"id": id, "in": map[string]any{"description": "billing", "eventTypes": []string{"csat.*"}}})
	if dig(d, "updateWebhookEndpoint", "description") != "billing" || dig(d, "updateWebhookEndpoint", "url") != "http://127.0.0.1:9/hook" {
		t.Fatalf("updated %v", d)
	}

	// A config change is an event: one pending delivery to the endpoint.
	mustGQL(t, s, key, `mutation { updateCsatConfig(input: {surveyDelayHours: 5}) { surveyDelayHours } }`, nil)
	deliveries := `query($id: ID!) { webhookEndpoint(id: $id) { deliveries(limit: 10) { totalCount nodes { id endpointId eventId eventType status attempts lastResponseCode lastError lastAttemptAt nextAttemptAt deliveredAt createdAt } } } }`
	d = mustGQL(t, s, readKey.Key, deliveries, map[string]any{"id": id})
	nodes, _ := dig(d, "webhookEndpoint", "deliveries", "nodes").([]any)
	if dig(d, "webhookEndpoint", "deliveries", "totalCount") != float64(1) || len(nodes) != 1 ||
		dig(nodes[0], "eventType") != "csat.config.updated" || dig(nodes[0], "status") != "pending" || dig(nodes[0], "endpointId") != id {
		t.Fatalf("deliveries %v", d)
	}
	first := dig(nodes[0], "id").(string)
	if r := gql(t, s, key, `query($id: ID!) { webhookEndpoint(id: $id) { deliveries(limit: 0) { totalCount } } }`, map[string]any{"id": id}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("limit 0: %+v", r.Errors)
	}

	redeliver := `mutation($e: ID!, $d: ID!) { redeliverWebhook(endpointId: $e, deliveryId: $d) { id eventId status } }`
	if r := gql(t, s, readKey.Key, redeliver, map[string]any{"e": id, "d": first}); r.code() != "FORBIDDEN" {
		t.Fatalf("redeliver with csat:read only: %+v", r.Errors)
	}
	d = mustGQL(t, s, key, redeliver, map[string]any{"e": id, "d": first})
	if again := dig(d, "redeliverWebhook", "id"); again == first || again == nil || dig(d, "redeliverWebhook", "eventId") != dig(nodes[0], "eventId") {
		t.Fatalf("redelivered %v", d)
	}
	if d = mustGQL(t, s, key, deliveries, map[string]any{"id": id}); dig(d, "webhookEndpoint", "deliveries", "totalCount") != float64(2) {
		t.Fatalf("after redeliver %v", d)
	}

	d = mustGQL(t, s, key, `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { id } } }`, map[string]any{"id": id})
	if rotated, _ := dig(d, "rotateWebhookSecret", "secret").(string); !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Fatalf("rotated %v", d)
	}

	if r := gql(t, s, readKey.Key, `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }`, map[string]any{"id": id}); r.code() != "FORBIDDEN" {
		t.Fatalf("delete with csat:read only: %+v", r.Errors)
	}
	if d = mustGQL(t, s, key, `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }`, map[string]any{"id": id}); d["deleteWebhookEndpoint"] != id {
		t.Fatalf("delete %v", d)
	}
	if d = mustGQL(t, s, key, `query($id: ID!) { webhookEndpoint(id: $id) { id } webhookEndpoints { id } }`, map[string]any{"id": id}); d["webhookEndpoint"] != nil ||
		len(d["webhookEndpoints"].([]any)) != 0 {
		t.Fatalf("after delete %v", d)
	}
	if r := gql(t, s, key, `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }`, map[string]any{"id": id}); r.code() != "NOT_FOUND" {
		t.Fatalf("second delete: %+v", r.Errors)
	}
}

// TestWebhookIsolation: another tenant's endpoint ids are unknown to
// every webhook field and nothing of A's changes.
func TestWebhookIsolation(t *testing.T) {
	s := startHooks(t)
	_, aKey := s.NewTenant(t, "A", hookScopes...)
	_, bKey := s.NewTenant(t, "B", hookScopes...)
	d := mustGQL(t, s, aKey, `mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/a"}) { secret endpoint { id } } }`, nil)
	id := dig(d, "createWebhookEndpoint", "endpoint", "id").(string)
	mustGQL(t, s, aKey, `mutation { updateCsatConfig(input: {surveyDelayHours: 6}) { surveyDelayHours } }`, nil)
	d = mustGQL(t, s, aKey, `query($id: ID!) { webhookEndpoint(id: $id) { deliveries { nodes { id } } } }`, map[string]any{"id": id})
	delivery := dig(d, "webhookEndpoint", "deliveries", "nodes").([]any)[0].(map[string]any)["id"]

	d = mustGQL(t, s, bKey, `query($id: ID!) { webhookEndpoint(id: $id) { id deliveries { totalCount } } webhookEndpoints { id } }`, map[string]any{"id": id})
	if d["webhookEndpoint"] != nil || len(d["webhookEndpoints"].([]any)) != 0 {
		t.Fatalf("B sees %v", d)
	}
	for name, q := range map[string]string{
		"update":    `mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false, url: "http://127.0.0.1:9/b"}) { id } }`,
		"rotate":    `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`,
		"redeliver": `mutation($id: ID!, $d: ID!) { redeliverWebhook(endpointId: $id, deliveryId: $d) { id } }`,
		"delete":    `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }`,
	} {
		if r := gql(t, s, bKey, q, map[string]any{"id": id, "d": delivery}); r.code() != "NOT_FOUND" {
			t.Errorf("B's %s of A's endpoint: %+v", name, r.Errors)
		}
	}
	// B's own endpoint cannot redeliver A's delivery either.
	d = mustGQL(t, s, bKey, `mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/b"}) { endpoint { id } } }`, nil)
	own := dig(d, "createWebhookEndpoint", "endpoint", "id")
	if r := gql(t, s, bKey, `mutation($id: ID!, $d: ID!) { redeliverWebhook(endpointId: $id, deliveryId: $d) { id } }`, map[string]any{"id": own, "d": delivery}); r.code() != "NOT_FOUND" {
		t.Errorf("B redelivered A's delivery: %+v", r.Errors)
	}
	d = mustGQL(t, s, aKey, `query($id: ID!) { webhookEndpoint(id: $id) { url enabled deliveries { totalCount } } }`, map[string]any{"id": id})
	if dig(d, "webhookEndpoint", "url") != "http://127.0.0.1:9/a" || dig(d, "webhookEndpoint", "enabled") != true ||
		dig(d, "webhookEndpoint", "deliveries", "totalCount") != float64(1) {
		t.Fatalf("A's endpoint after B's attempts: %v", d)
	}
}
