package graph_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

// wsClient speaks graphql-transport-ws to a running service.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS connects and sends connection_init with the payload; it returns
// the client and the first message the server answered with.
func dialWS(t *testing.T, s *testenv.Service, init map[string]any) (*wsClient, wsMsg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(s.URL, "http://", "ws://", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	c := &wsClient{t: t, conn: conn}
	if conn.Subprotocol() != "graphql-transport-ws" {
		t.Fatalf("negotiated %q", conn.Subprotocol())
	}
	p, _ := json.Marshal(init)
	c.send(wsMsg{Type: "connection_init", Payload: p})
	m, err := c.read(5 * time.Second)
	return c, m, err
}

func (c *wsClient) send(m wsMsg) {
	b, _ := json.Marshal(m)
	if err := c.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

func (c *wsClient) read(timeout time.Duration) (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			return wsMsg{}, err
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMsg{}, err
		}
		if m.Type == "ping" {
			c.send(wsMsg{Type: "pong"})
			continue
		}
		return m, nil
	}
}

// subscribe starts surveyUpdated and waits until the server holds the
// subscription (a survey of another tenant committed now is not seen, a
// later one of ours is).
func subscribe(t *testing.T, s *testenv.Service, key string) *wsClient {
	t.Helper()
	c, ack, err := dialWS(t, s, map[string]any{"X-API-Key": key})
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	q, _ := json.Marshal(map[string]any{"query": `subscription { surveyUpdated { id conversationId status rating } }`})
	c.send(wsMsg{ID: "1", Type: "subscribe", Payload: q})
	return c
}

// next returns the next surveyUpdated event.
func (c *wsClient) next(timeout time.Duration) (map[string]any, error) {
	m, err := c.read(timeout)
	if err != nil {
		return nil, err
	}
	if m.Type != "next" {
		c.t.Fatalf("expected next, got %s %s", m.Type, m.Payload)
	}
	var p struct {
		Data   map[string]any `json:"data"`
		Errors []gqlErr       `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		c.t.Fatalf("event %s: %v", m.Payload, err)
	}
	return p.Data["surveyUpdated"].(map[string]any), nil
}

// nextFor waits for an event about conversation conv (earlier events of
// the same tenant are skipped).
func (c *wsClient) nextFor(conv string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ev, err := c.next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for an update of %s: %v", conv, err)
		}
		if ev["conversationId"] == conv {
			return ev
		}
	}
	c.t.Fatalf("no update of %s", conv)
	return nil
}

// TestSubscriptionAcrossInstances: a dashboard subscribed on one API
// process hears the changes made through another (shared Postgres and
// Redis), only its own tenant's.
func TestSubscriptionAcrossInstances(t *testing.T) {
	a := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	b := testenv.StartService(t, testenv.Options{RedisDB: redisDB, DSN: a.DSN, SMTP: a.SMTP})
	tenantID, key := a.NewTenant(t, "Acme")
	otherID, otherKey := a.NewTenant(t, "Other")

	sub := subscribe(t, a, key)
	otherSub := subscribe(t, a, otherKey)
	// The subscribe message is asynchronous: wait until both subscriptions
	// are live in Redis before changing anything.
	testenv.Eventually(t, 5*time.Second, "two subscribers", func() bool {
		n, err := a.Redis.PubSubNumSub(context.Background(), "csat:live:surveys:"+tenantID, "csat:live:surveys:"+otherID).Result()
		return err == nil && n["csat:live:surveys:"+tenantID] == 1 && n["csat:live:surveys:"+otherID] == 1
	})

	// A change through instance b: the intake (PENDING).
	res := b.Do(t, "POST", "/api/v1/csat/surveys", key, map[string]any{
		"conversation_id": "conv-b", "contact_email": "jane@example.com",
		"resolved_at": time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339),
	})
	if res.Status != 201 {
		t.Fatalf("intake on b: %d %s", res.Status, res.Body)
	}
	ev := sub.nextFor("conv-b")
	if ev["status"] != "PENDING" {
		t.Fatalf("event %v", ev)
	}
	id := ev["id"].(string)

	// The send (by whichever worker) and a rating through b's public link.
	mail := a.SMTP.WaitFor(t, "jane@example.com", 1, 15*time.Second)[0]
	if ev := sub.nextFor("conv-b"); ev["status"] != "SENT" {
		t.Fatalf("event %v", ev)
	}
	if r := b.Do(t, "GET", "/api/v1/csat/rate?token="+tokenIn(t, mail)+"&rating=4", "", nil); r.Status != 200 {
		t.Fatalf("rate on b: %d %s", r.Status, r.Body)
	}
	ev = sub.nextFor("conv-b")
	if ev["status"] != "COMPLETED" || ev["rating"] != float64(4) || ev["id"] != id {
		t.Fatalf("event %v", ev)
	}

	// The other tenant heard none of it: its first event is its own.
	if _, err := b.App.Svc.Intake(tenantCtx(otherID), survey.IntakeInput{ConversationID: "conv-other", ContactEmail: "o@example.com"}); err != nil {
		t.Fatal(err)
	}
	if ev, err := otherSub.next(10 * time.Second); err != nil || ev["conversationId"] != "conv-other" {
		t.Fatalf("the other tenant's first event: %v %v", ev, err)
	}
}

// TestSubscriptionAuth: the key travels in connection_init; without a
// valid one the connection is closed with 4403, and a key without
// csat:read cannot subscribe.
func TestSubscriptionAuth(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	_, writeOnly := s.NewTenant(t, "Writer", "csat:write")
	_, key := s.NewTenant(t, "Acme")

	for name, init := range map[string]map[string]any{
		"no-key":      {},
		"unknown-key": {"X-API-Key": "ak_live_" + strings.Repeat("y", 32)},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := dialWS(t, s, init)
			if websocket.CloseStatus(err) != 4403 {
				t.Fatalf("init without a valid key: %v", err)
			}
		})
	}
	t.Run("bearer-in-payload", func(t *testing.T) {
		_, ack, err := dialWS(t, s, map[string]any{"Authorization": "Bearer " + key})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("bearer init: %v %+v", err, ack)
		}
	})
	t.Run("needs-csat-read", func(t *testing.T) {
		c := subscribe(t, s, writeOnly)
		m, err := c.read(5 * time.Second)
		if err != nil || (m.Type != "error" && m.Type != "next") || !strings.Contains(string(m.Payload), "FORBIDDEN") {
			t.Fatalf("subscribe without csat:read: %v %s %s", err, m.Type, m.Payload)
		}
	})
}
