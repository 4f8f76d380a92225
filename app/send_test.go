package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/csat/csat/db"
	"github.com/csat/csat/jobs"
	"github.com/csat/csat/mail"
	"github.com/csat/csat/secret"
	"github.com/csat/csat/survey"
	"github.com/csat/csat/testenv"
)

// apiOnly runs no worker: the tests call Send themselves.
func apiOnly(t *testing.T) *testenv.Service {
	return testenv.StartService(t, testenv.Options{RedisDB: redisDB, Env: map[string]string{"CSAT_ROLE": "api"}})
}

// duePending stores n pending surveys of the tenant, due a second ago.
func duePending(t *testing.T, s *testenv.Service, tenantID, prefix string, n int) []string {
	t.Helper()
	return pendingDueAt(t, s, tenantID, prefix, n, time.Now().Add(-time.Second))
}

// pendingDueAt stores n pending surveys of the tenant, due at the given time.
func pendingDueAt(t *testing.T, s *testenv.Service, tenantID, prefix string, n int, due time.Time) []string {
	t.Helper()
	// One statement: a test that wants its wave due a few seconds ahead
	// must not spend them storing it (one INSERT per survey took over 2 s
	// on a loaded machine, and the wave was then too close to its due time
	// to be grouped).
	_, err := s.Admin.NewRaw(`INSERT INTO surveys (tenant_id, id, conversation_id, contact_email, status, resolved_at, scheduled_for)
		SELECT ?, 'csat_' || ? || lpad(i::text, 20, '0'), ? || i, ? || i || '@example.com', 'pending', now() - interval '2 hours', ?
		FROM generate_series(0, ? - 1) AS i`,
		tenantID, prefix, prefix, prefix, due.UTC(), n).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("csat_%s%020d", prefix, i)
	}
	return ids
}

// One send task emails its survey and the tenant's other due surveys with
// it, each once, each fully recorded.
func TestSendBatchesDueSurveys(t *testing.T) {
	s := apiOnly(t)
	tenantID, _ := s.NewTenant(t, "Acme")
	ids := duePending(t, s, tenantID, "b", 30)
	out, err := s.App.Svc.Send(context.Background(), tenantID, ids[7])
	if err != nil || out != survey.OutcomeSent {
		t.Fatalf("send: %v %v", out, err)
	}
	for i, id := range ids {
		sv := getSurvey(t, s, tenantID, id)
		if sv.Status != db.StatusSent || sv.SentAt == nil || sv.HandedAt == nil || !sv.SentAt.Equal(*sv.HandedAt) ||
			sv.ExpiresAt == nil || sv.UnsubHash == nil || sv.TokenHash == nil {
			t.Errorf("survey %d: %s sent %v handed %v expires %v", i, sv.Status, sv.SentAt, sv.HandedAt, sv.ExpiresAt)
		}
		if n := len(s.SMTP.To(fmt.Sprintf("b%d@example.com", i))); n != 1 {
			t.Errorf("survey %d: %d emails", i, n)
		}
	}
	// The other surveys' own tasks find them sent.
	if out, err := s.App.Svc.Send(context.Background(), tenantID, ids[0]); err != nil || out != survey.OutcomeNoop {
		t.Fatalf("second task: %v %v", out, err)
	}
	if n := len(s.SMTP.Messages()); n != len(ids) {
		t.Fatalf("%d emails for %d surveys", n, len(ids))
	}
}

// hookSender runs before just ahead of the handoff's Hold: the moment
// the SMTP server holds a whole message, before its release.
type hookSender struct {
	mail.Sender
	before func()
}

func (h hookSender) Send(ctx context.Context, m mail.Message, ho *mail.Handoff) error {
	hold := ho.Hold
	ho.Hold = func() error { h.before(); return hold() }
	return h.Sender.Send(ctx, m, ho)
}

// A survey cancelled while its email was on its way to the SMTP server:
// the handoff finds it no longer claimable and the message is abandoned
// before its final ".", so the server never delivers it.
func TestSendAbandonsWhenClaimLost(t *testing.T) {
	s := apiOnly(t)
	tenantID, _ := s.NewTenant(t, "Acme")
	id := duePending(t, s, tenantID, "c", 1)[0]
	s.App.Svc.Mailer = hookSender{Sender: s.App.Svc.Mailer, before: func() {
		if _, err := s.Admin.NewRaw("UPDATE surveys SET status = 'expired' WHERE id = ?", id).Exec(context.Background()); err != nil {
			t.Error(err)
		}
	}}
	out, err := s.App.Svc.Send(context.Background(), tenantID, id)
	if err != nil || out != survey.OutcomeNoop {
		t.Fatalf("send: %v %v", out, err)
	}
	if n := len(s.SMTP.Messages()); n != 0 {
		t.Fatalf("an abandoned message was delivered (%d)", n)
	}
	if sv := getSurvey(t, s, tenantID, id); sv.Status != db.StatusExpired || sv.HandedAt != nil {
		t.Fatalf("survey %s handed %v", sv.Status, sv.HandedAt)
	}
}

// A worker that died after handing an email over leaves a pending survey
// with handed_at: once its claim lapsed, the next send finishes it as sent
// and emails nothing.
func TestSendFinishesDeadWorkersHandoff(t *testing.T) {
	s := apiOnly(t)
	tenantID, _ := s.NewTenant(t, "Acme")
	ids := duePending(t, s, tenantID, "d", 2)
	handed := time.Now().Add(-2 * survey.DefaultClaimLease).UTC().Truncate(time.Microsecond)
	if _, err := s.Admin.NewRaw(`UPDATE surveys SET claimed_at = ?0, handed_at = ?0, token_hash = ?1, expires_at = ?0::timestamptz + interval '7 days'
		WHERE id = ?2`, handed, secret.Hash("dead-worker-token"), ids[1]).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The live survey's task takes the dead worker's handoff along.
	if out, err := s.App.Svc.Send(context.Background(), tenantID, ids[0]); err != nil || out != survey.OutcomeSent {
		t.Fatalf("send: %v %v", out, err)
	}
	sv := getSurvey(t, s, tenantID, ids[1])
	if sv.Status != db.StatusSent || sv.SentAt == nil || !sv.SentAt.Equal(handed) {
		t.Fatalf("handed survey is %s, sent at %v, want %v", sv.Status, sv.SentAt, handed)
	}
	if n := len(s.SMTP.To("d1@example.com")); n != 0 {
		t.Fatalf("the handed-over survey was emailed again (%d)", n)
	}
	if n := len(s.SMTP.To("d0@example.com")); n != 1 {
		t.Fatalf("the due survey got %d emails", n)
	}
}

// A click can outrun the send's last commit: the customer has the email,
// the survey still says pending with handed_at. The click finishes it as
// sent and records the rating.
func TestClickFinishesHandedSurvey(t *testing.T) {
	s := apiOnly(t)
	tenantID, _ := s.NewTenant(t, "Acme")
	id := duePending(t, s, tenantID, "e", 1)[0]
	token := survey.NewToken(tenantID)
	if _, err := s.Admin.NewRaw(`UPDATE surveys SET claimed_at = now(), handed_at = now(), token_hash = ?, expires_at = now() + interval '7 days'
		WHERE id = ?`, secret.Hash(token), id).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "GET", "/api/v1/csat/rate?token="+url.QueryEscape(token)+"&rating=4", "", nil)
	if r.Status != 200 {
		t.Fatalf("rate: %d %s", r.Status, r.Body)
	}
	sv := getSurvey(t, s, tenantID, id)
	if sv.Status != db.StatusCompleted || sv.Rating == nil || *sv.Rating != 4 || sv.SentAt == nil || !sv.SentAt.Equal(*sv.HandedAt) {
		t.Fatalf("survey %s rating %v sent %v", sv.Status, sv.Rating, sv.SentAt)
	}
}

// The server refusing a released message makes the survey due again, free
// of claims; the retry emails it once.
func TestSendRefusedIsDueAgain(t *testing.T) {
	s := apiOnly(t)
	tenantID, _ := s.NewTenant(t, "Acme")
	id := duePending(t, s, tenantID, "f", 1)[0]
	s.SMTP.SetFail(func(string) bool { return true })
	if _, err := s.App.Svc.Send(context.Background(), tenantID, id); err == nil {
		t.Fatal("send succeeded while the server refused")
	}
	if sv := getSurvey(t, s, tenantID, id); sv.Status != db.StatusPending || sv.ClaimedAt != nil || sv.HandedAt != nil {
		t.Fatalf("refused survey is %s, claimed %v, handed %v", sv.Status, sv.ClaimedAt, sv.HandedAt)
	}
	s.SMTP.SetFail(nil)
	if out, err := s.App.Svc.Send(context.Background(), tenantID, id); err != nil || out != survey.OutcomeSent {
		t.Fatalf("retry: %v %v", out, err)
	}
	if n := len(s.SMTP.To("f0@example.com")); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
}

// groupFaults breaks two messages of a handoff group: lose's claim is
// taken (lost runs) just before its handoff, and undo's final "." cannot
// be written after its handoff was recorded (the message never reaches the
// server, as when the connection breaks there).
type groupFaults struct {
	mail.Sender
	lose, undo string
	lost       func()
}

func (f groupFaults) Send(ctx context.Context, m mail.Message, ho *mail.Handoff) error {
	switch m.To {
	case f.undo:
		if err := ho.Hold(); err != nil {
			return err
		}
		ho.Undo()
		return errors.New("write: connection reset by peer")
	case f.lose:
		hold := ho.Hold
		ho.Hold = func() error { f.lost(); return hold() }
	}
	return f.Sender.Send(ctx, m, ho)
}

// A batch goes out in handoff groups, one transaction each. In the first
// group, a member whose claim was lost is abandoned, one whose "." was not
// written is taken back, one the server refused is due again, and the rest
// are sent and recorded; the groups after a failed one are given back. A
// second pass sends each survey left exactly once.
func TestSendGroupsFailMemberByMember(t *testing.T) {
	s := apiOnly(t)
	s.App.Svc.HandoffGroup = 8
	tenantID, _ := s.NewTenant(t, "Acme")
	ctx := context.Background()
	ids := duePending(t, s, tenantID, "h", 20)
	// Claimed in this order: groups 0-7, 8-15, 16-19.
	if _, err := s.Admin.NewRaw(`UPDATE surveys SET scheduled_for = scheduled_for + substring(id from '[0-9]+$')::int * interval '1 ms'
		WHERE tenant_id = ?`, tenantID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	mailer := s.App.Svc.Mailer
	s.App.Svc.Mailer = groupFaults{Sender: mailer, lose: "h3@example.com", undo: "h5@example.com", lost: func() {
		if _, err := s.Admin.NewRaw("UPDATE surveys SET status = 'expired' WHERE id = ?", ids[3]).Exec(ctx); err != nil {
			t.Error(err)
		}
	}}
	s.SMTP.SetFail(func(to string) bool { return to == "h6@example.com" })
	if out, err := s.App.Svc.Send(ctx, tenantID, ids[0]); err != nil || out != survey.OutcomeSent {
		t.Fatalf("send: %v %v", out, err)
	}
	emails := func(i int) int { return len(s.SMTP.To(fmt.Sprintf("h%d@example.com", i))) }
	for i, id := range ids {
		sv := getSurvey(t, s, tenantID, id)
		switch {
		case i == 3:
			if sv.Status != db.StatusExpired || sv.HandedAt != nil || emails(i) != 0 {
				t.Errorf("lost claim %d: %s handed %v, %d emails", i, sv.Status, sv.HandedAt, emails(i))
			}
		case i == 5 || i == 6 || i >= 8:
			if sv.Status != db.StatusPending || sv.HandedAt != nil || sv.ClaimedAt != nil || emails(i) != 0 {
				t.Errorf("unsent %d: %s handed %v claimed %v, %d emails", i, sv.Status, sv.HandedAt, sv.ClaimedAt, emails(i))
			}
		default:
			if sv.Status != db.StatusSent || sv.SentAt == nil || !sv.SentAt.Equal(*sv.HandedAt) || sv.UnsubHash == nil || emails(i) != 1 {
				t.Errorf("sent %d: %s sent %v handed %v, %d emails", i, sv.Status, sv.SentAt, sv.HandedAt, emails(i))
			}
		}
	}
	s.App.Svc.Mailer = mailer
	s.SMTP.SetFail(nil)
	if n, more, err := s.App.Svc.SendDue(ctx, tenantID, time.Now()); n != 14 || more || err != nil {
		t.Fatalf("second pass: %d sent, more %v, %v", n, more, err)
	}
	for i, id := range ids {
		want := 1
		if i == 3 {
			want = 0
		}
		if sv := getSurvey(t, s, tenantID, id); emails(i) != want || i != 3 && sv.Status != db.StatusSent {
			t.Errorf("survey %d: %s, %d emails", i, sv.Status, emails(i))
		}
	}
}

// SendDue sends every due survey of the tenant once, batch after batch,
// however many callers share the wave, and leaves the ones due later.
func TestSendDueSendsEachDueSurveyOnce(t *testing.T) {
	cases := []struct {
		name       string
		due, later int
		callers    int
	}{
		{name: "less than a batch", due: 7, callers: 1},
		{name: "several batches", due: 2*survey.SendBatch + 13, later: 5, callers: 1},
		{name: "exactly a batch", due: survey.SendBatch, callers: 1},
		{name: "shared by four callers", due: 3*survey.SendBatch + 1, later: 3, callers: 4},
	}
	s := apiOnly(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenantID, _ := s.NewTenant(t, fmt.Sprintf("Acme %d", i))
			prefix := fmt.Sprintf("w%dx", i)
			ids := append(duePending(t, s, tenantID, prefix, tc.due),
				pendingDueAt(t, s, tenantID, prefix+"l", tc.later, time.Now().Add(time.Hour))...)
			sent := make(chan int, tc.callers)
			for range tc.callers {
				go func() {
					n, more, err := s.App.Svc.SendDue(context.Background(), tenantID, time.Now())
					if err != nil || more {
						t.Errorf("send due: %v more %v", err, more)
					}
					sent <- n
				}()
			}
			total := 0
			for range tc.callers {
				total += <-sent
			}
			if total != tc.due {
				t.Errorf("sent %d, want %d", total, tc.due)
			}
			for j, id := range ids {
				sv := getSurvey(t, s, tenantID, id)
				if j < tc.due {
					if n := len(s.SMTP.To(fmt.Sprintf("%s%d@example.com", prefix, j))); sv.Status != db.StatusSent || n != 1 {
						t.Errorf("due survey %d: %s, %d emails", j, sv.Status, n)
					}
					continue
				}
				if n := len(s.SMTP.To(fmt.Sprintf("%sl%d@example.com", prefix, j-tc.due))); sv.Status != db.StatusPending || n != 0 || sv.ClaimedAt != nil {
					t.Errorf("later survey %d: %s, %d emails, claimed %v", j, sv.Status, n, sv.ClaimedAt)
				}
			}
		})
	}
}

// A wave due a few seconds ahead is one send-due task of its tenant (not a
// task per survey), shared with helper tasks; every survey is emailed once.
func TestWaveDueAtOnceSentByGroupedTask(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, _ := s.NewTenant(t, "Acme")
	n := 3*survey.SendBatch + 7
	due := time.Now().Add(4 * time.Second).UTC()
	ids := pendingDueAt(t, s, tenantID, "g", n, due)
	for _, id := range ids {
		if err := s.App.Svc.Jobs.ScheduleSend(context.Background(), tenantID, id, due); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := asynq.NewInspectorFromRedisClient(s.Redis).ListScheduledTasks(jobs.QueueCritical)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Type != jobs.TypeSurveySendDue {
		t.Fatalf("%d scheduled tasks for a wave due at once, want one send-due task", len(tasks))
	}
	testenv.Eventually(t, 30*time.Second, "every survey sent", func() bool {
		sent, err := s.Admin.NewSelect().Table("surveys").Where("tenant_id = ? AND status = 'sent'", tenantID).Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return sent == int64(n)
	})
	for i, id := range ids {
		if sv := getSurvey(t, s, tenantID, id); sv.Status != db.StatusSent {
			t.Errorf("survey %d: %s", i, sv.Status)
		}
		if got := len(s.SMTP.To(fmt.Sprintf("g%d@example.com", i))); got != 1 {
			t.Errorf("survey %d: %d emails", i, got)
		}
	}
}

// Expiries due in the same second a few seconds ahead are one task of the
// tenant, which expires every sent survey whose link expired, and only those.
func TestExpiriesDueTogetherShareATask(t *testing.T) {
	s := testenv.StartService(t, testenv.Options{RedisDB: redisDB})
	tenantID, _ := s.NewTenant(t, "Acme")
	ctx := context.Background()
	at := time.Now().Add(4 * time.Second).UTC().Truncate(time.Second).Add(300 * time.Millisecond)
	ids := duePending(t, s, tenantID, "x", 4)
	for i, id := range ids {
		exp := at.Add(time.Duration(i) * 100 * time.Millisecond)
		if i == 3 {
			exp = at.Add(time.Hour)
		}
		if _, err := s.Admin.NewRaw("UPDATE surveys SET status = 'sent', sent_at = now(), expires_at = ? WHERE id = ?", exp, id).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.App.Svc.Jobs.ScheduleExpire(ctx, tenantID, id, exp); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := asynq.NewInspectorFromRedisClient(s.Redis).ListScheduledTasks(jobs.QueueDefault)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 || tasks[0].Type != jobs.TypeSurveyExpireDue || tasks[1].Type != jobs.TypeSurveyExpireDue {
		t.Fatalf("%d scheduled expiry tasks, want one per second", len(tasks))
	}
	testenv.Eventually(t, 20*time.Second, "the three expired", func() bool {
		for _, id := range ids[:3] {
			if getSurvey(t, s, tenantID, id).Status != db.StatusExpired {
				return false
			}
		}
		return true
	})
	if sv := getSurvey(t, s, tenantID, ids[3]); sv.Status != db.StatusSent {
		t.Fatalf("the survey expiring in an hour is %s", sv.Status)
	}
}
