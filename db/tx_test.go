package db_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/csat/csat/db"
	"github.com/csat/csat/secret"
)

// Transactions begin lazily: the BEGIN travels with the first statement
// (see bindingConn). These tests hold the connection to what a BEGIN of its
// own guaranteed.

// txNote is a table of the test's own (no tenant_id: it is not tenant data).
func txNote(t *testing.T) (*twoTenants, func() int) {
	t.Helper()
	f := seedTwoTenants(t)
	ctx := context.Background()
	if _, err := f.admin.ExecContext(ctx, "CREATE TABLE tx_note (n int); GRANT SELECT, INSERT ON tx_note TO csat_app"); err != nil {
		t.Fatal(err)
	}
	return f, func() int { return count(t, ctx, f.admin, "tx_note") }
}

// TestLazyBeginIsOneRoundTrip: the transaction's first statement arrives
// in the same message as its BEGIN (Postgres stamps a statement with the
// time its message arrived: equal to the transaction's start only then);
// later statements are still inside it.
func TestLazyBeginIsOneRoundTrip(t *testing.T) {
	f, _ := txNote(t)
	err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
		var same bool
		if err := tx.NewRaw("SELECT transaction_timestamp() = statement_timestamp()").Scan(ctx, &same); err != nil {
			return err
		}
		if !same {
			t.Error("the first statement came in a message after the BEGIN")
		}
		var second bool
		if err := tx.NewRaw("SELECT transaction_timestamp() < statement_timestamp()").Scan(ctx, &second); err != nil {
			return err
		}
		if !second {
			t.Error("the second statement started a transaction of its own")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLazyTxCommitsAndRollsBack: writes of a transaction are all or nothing.
func TestLazyTxCommitsAndRollsBack(t *testing.T) {
	f, notes := txNote(t)
	errBoom := errors.New("boom")
	err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
		for range 2 {
			if _, err := tx.ExecContext(ctx, "INSERT INTO tx_note VALUES (1)"); err != nil {
				return err
			}
		}
		if n := notes(); n != 0 {
			t.Errorf("another connection sees %d uncommitted rows", n)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	if n := notes(); n != 0 {
		t.Fatalf("%d rows after rollback", n)
	}
	err = f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO tx_note VALUES (1), (2)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := notes(); n != 2 {
		t.Fatalf("%d rows after commit, want 2", n)
	}
}

// TestLazyTxWithoutStatements: committing or rolling back a transaction
// that ran nothing sends nothing, and the connection (the only one) is not
// left inside a transaction: the next statement commits on its own.
func TestLazyTxWithoutStatements(t *testing.T) {
	f, notes := txNote(t)
	f.app.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, fail := range []bool{false, true} {
		err := f.app.RunInTx(ctx, nil, func(context.Context, bun.Tx) error {
			if fail {
				return errors.New("nothing to do")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Fatalf("fail=%v: err = %v", fail, err)
		}
		if _, err := f.app.ExecContext(ctx, "INSERT INTO tx_note VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	}
	if n := notes(); n != 2 {
		t.Fatalf("another connection sees %d rows, want 2 (an autocommit statement ran inside a leftover transaction)", n)
	}
}

// TestLazyTxFirstStatementFails: whether the first statement fails while
// running (the BEGIN ran: Postgres aborts the transaction) or does not even
// parse (the whole message, BEGIN included, never ran), the transaction's
// later statements are refused and nothing is written, never committed on
// their own outside a transaction.
func TestLazyTxFirstStatementFails(t *testing.T) {
	f, notes := txNote(t)
	f.app.SetMaxOpenConns(1)
	for _, first := range []string{"SELECT 1/0", "SELEC 1"} {
		tx, err := f.app.BeginTx(f.ctxA, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(f.ctxA, first); err == nil {
			t.Fatalf("%s succeeded", first)
		}
		if _, err := tx.ExecContext(f.ctxA, "INSERT INTO tx_note VALUES (1)"); err == nil {
			t.Errorf("after %q failed, a statement of the same transaction ran", first)
		}
		if err := tx.Commit(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			t.Logf("commit after %q: %v", first, err)
		}
		if n := notes(); n != 0 {
			t.Fatalf("after %q: %d rows written", first, n)
		}
		// The connection is usable and outside any transaction.
		if _, err := f.app.ExecContext(f.ctxA, "INSERT INTO tx_note VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if n := notes(); n != 1 {
			t.Fatalf("after %q: autocommit insert left %d rows visible", first, n)
		}
		if _, err := f.admin.ExecContext(f.ctxA, "DELETE FROM tx_note"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLazyTxOptions: isolation level and read-only reach the BEGIN.
func TestLazyTxOptions(t *testing.T) {
	f, notes := txNote(t)
	err := f.app.RunInTx(f.ctxA, &sql.TxOptions{Isolation: sql.LevelSerializable}, func(ctx context.Context, tx bun.Tx) error {
		var iso string
		if err := tx.NewRaw("SHOW transaction_isolation").Scan(ctx, &iso); err != nil {
			return err
		}
		if iso != "serializable" {
			t.Errorf("isolation %q, want serializable", iso)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = f.app.RunInTx(f.ctxA, &sql.TxOptions{ReadOnly: true}, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO tx_note VALUES (1)")
		return err
	})
	if err == nil || notes() != 0 {
		t.Fatalf("a read-only transaction wrote: err = %v", err)
	}
}

// Deferred writes (db.WithDeferred) ride with the transaction's next
// message, usually its COMMIT. These tests hold them to what a message of
// their own guaranteed: they run, inside the transaction, before what
// follows them; a failure of theirs rolls the transaction back; and the
// connection is left outside any transaction.

// lastMessage returns the text of the last message the backend pid received.
func lastMessage(t *testing.T, f *twoTenants, pid int) string {
	t.Helper()
	var q string
	if err := f.admin.NewRaw("SELECT query FROM pg_stat_activity WHERE pid = ?", pid).Scan(context.Background(), &q); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestDeferredWriteRidesWithCommit: the deferred insert is not sent when
// it is run but in the COMMIT's message, and is committed.
func TestDeferredWriteRidesWithCommit(t *testing.T) {
	f, notes := txNote(t)
	var pid int
	err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &pid); err != nil {
			return err
		}
		res, err := tx.ExecContext(db.WithDeferred(ctx), "INSERT INTO tx_note VALUES (7)")
		if err != nil {
			return err
		}
		if _, err := res.RowsAffected(); err == nil {
			t.Error("a deferred statement's result claims to know its rows")
		}
		if q := lastMessage(t, f, pid); strings.Contains(q, "tx_note") {
			t.Errorf("the deferred insert went out before the commit: %q", q)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if q := lastMessage(t, f, pid); !strings.Contains(q, "INSERT INTO tx_note VALUES (7)") || !strings.HasSuffix(q, "COMMIT") {
		t.Errorf("last message %q, want the insert and the COMMIT", q)
	}
	if n := notes(); n != 1 {
		t.Fatalf("%d rows committed, want 1", n)
	}
}

// TestDeferredWriteRidesWithNextStatement: a statement after the deferred
// one carries it and sees what it wrote; a statement with placeholders
// (which pgdriver formats over the whole message) sends it first instead.
func TestDeferredWriteRidesWithNextStatement(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		args        []any
	}{
		{"literal", "SELECT count(*) FROM tx_note WHERE n = 7", nil},
		{"placeholders", "SELECT count(*) FROM tx_note WHERE n = $1", []any{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, notes := txNote(t)
			err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				// '$1' in a literal: the placeholder case must not format it.
				if _, err := tx.ExecContext(db.WithDeferred(ctx), "INSERT INTO tx_note SELECT 7 WHERE '$1' = '$1'"); err != nil {
					return err
				}
				var n int
				// database/sql, not Bun: Bun would format the placeholders
				// itself and pass no arguments on.
				if err := tx.Tx.QueryRowContext(ctx, tc.query, tc.args...).Scan(&n); err != nil {
					return err
				}
				if n != 1 {
					t.Errorf("the next statement sees %d deferred rows, want 1", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := notes(); n != 1 {
				t.Fatalf("%d rows committed, want 1", n)
			}
		})
	}
}

// TestDeferredWriteFails: a deferred write that fails when it runs (with
// the COMMIT, or with the next statement, even one that does not parse)
// commits nothing, the failure reaches the caller, and the connection (the
// only one) is usable and outside any transaction. Also when the failing
// write was the transaction's first statement, holding its BEGIN.
func TestDeferredWriteFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		first   bool   // the deferred write is the transaction's first statement
		next    string // a statement after it, "" for none
		wantErr error
	}{
		{name: "with-commit"},
		{name: "with-commit-first", first: true},
		{name: "with-next-statement", next: "INSERT INTO tx_note VALUES (2)"},
		{name: "with-unparsable-statement", next: "INSERT INTO tx_note VALUE (2)"},
		{name: "with-next-statement-first", first: true, next: "INSERT INTO tx_note VALUES (2)"},
		{name: "expectation", wantErr: db.ErrLockedRowChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, notes := txNote(t)
			f.app.SetMaxOpenConns(1)
			bad := "INSERT INTO tx_note VALUES (1/0)"
			if tc.wantErr != nil {
				bad = "INSERT INTO tx_note SELECT 1 WHERE csat_expect(false, 'a locked row moved')"
			}
			err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				if !tc.first {
					if _, err := tx.ExecContext(ctx, "INSERT INTO tx_note VALUES (3)"); err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(db.WithDeferred(ctx), bad); err != nil {
					t.Fatalf("deferring: %v", err)
				}
				if tc.next != "" {
					if _, err := tx.ExecContext(ctx, tc.next); err == nil {
						t.Error("the statement carrying a failing deferred write succeeded")
					}
					// Ignoring that error, the transaction still commits nothing.
					if _, err := tx.ExecContext(ctx, "INSERT INTO tx_note VALUES (4)"); err == nil {
						t.Error("a statement after the failed message ran")
					}
				}
				return nil
			})
			if err == nil {
				t.Fatal("the transaction committed")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if n := notes(); n != 0 {
				t.Fatalf("%d rows committed", n)
			}
			if _, err := f.app.ExecContext(f.ctxA, "INSERT INTO tx_note VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if n := notes(); n != 1 {
				t.Fatalf("an autocommit insert left %d rows visible (a leftover transaction)", n)
			}
		})
	}
}

// TestDeferredWriteRolledBack: a rollback drops deferred writes, whether or
// not the BEGIN went out before them; outside a transaction a deferred
// statement runs at once.
func TestDeferredWriteRolledBack(t *testing.T) {
	f, notes := txNote(t)
	f.app.SetMaxOpenConns(1)
	errBoom := errors.New("boom")
	for _, first := range []bool{true, false} {
		err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
			if !first {
				if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(db.WithDeferred(ctx), "INSERT INTO tx_note VALUES (1)"); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("first=%v: err = %v", first, err)
		}
	}
	if n := notes(); n != 0 {
		t.Fatalf("%d rows after rollbacks", n)
	}
	if _, err := f.app.ExecContext(db.WithDeferred(f.ctxA), "INSERT INTO tx_note VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if n := notes(); n != 1 {
		t.Fatalf("%d rows after an autocommit deferred insert, want 1", n)
	}
}

// TestUpdateLockedSurvey: the update rides with the COMMIT and is stored;
// when the row's status is not the one the caller read it with, the
// transaction fails with ErrLockedRowChanged and nothing of it (here a
// row written before) is committed.
func TestUpdateLockedSurvey(t *testing.T) {
	for _, tc := range []struct {
		name, from string
		wantErr    error
	}{
		{"stored", db.StatusSent, nil},
		{"status-moved", db.StatusPending, db.ErrLockedRowChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seedTwoTenants(t)
			unsubs := count(t, f.unboundCtx, f.admin, "csat_unsubscribes")
			var pid int
			err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				if err := tx.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &pid); err != nil {
					return err
				}
				sv, err := db.GetSurveyForUpdate(ctx, tx, f.A, f.SurveyA.ID)
				if err != nil {
					return err
				}
				now := time.Now().UTC()
				if _, err := tx.NewInsert().Model(&db.Unsubscribe{TenantID: f.A, Email: "a@example.com", SurveyID: sv.ID}).Exec(ctx); err != nil {
					return err
				}
				rating := 2
				sv.Rating, sv.Status, sv.RespondedAt = &rating, db.StatusCompleted, &now
				return db.UpdateLockedSurvey(ctx, tx, sv, tc.from, "rating", "status", "responded_at")
			})
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if q := lastMessage(t, f, pid); tc.wantErr == nil && (!strings.Contains(q, `UPDATE "surveys"`) || !strings.HasSuffix(q, "COMMIT")) {
				t.Errorf("the update did not ride with the COMMIT: %q", q)
			}
			got, err := db.GetSurvey(f.ctxA, f.app, f.A, f.SurveyA.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus, wantUnsubs := db.StatusCompleted, unsubs+1
			if tc.wantErr != nil {
				wantStatus, wantUnsubs = db.StatusSent, unsubs
			}
			if got.Status != wantStatus {
				t.Errorf("status %q, want %q", got.Status, wantStatus)
			}
			if n := count(t, f.unboundCtx, f.admin, "csat_unsubscribes"); n != wantUnsubs {
				t.Errorf("%d opt-outs, want %d", n, wantUnsubs)
			}
		})
	}
}

// TestInsertNewSurvey: the insert rides with the COMMIT; when the
// conversation has a survey by then (a concurrent intake's), the commit
// fails with ErrConversationTaken and stores nothing.
func TestInsertNewSurvey(t *testing.T) {
	f := seedTwoTenants(t) // A has a survey for "conv-a"
	for _, tc := range []struct {
		conv    string
		wantErr error
	}{
		{"conv-new", nil},
		{"conv-a", db.ErrConversationTaken},
	} {
		t.Run(tc.conv, func(t *testing.T) {
			now := time.Now().UTC()
			sv := &db.Survey{TenantID: f.A, ID: secret.ID("csat_"), ConversationID: tc.conv, ContactEmail: "x@example.com",
				Status: db.StatusPending, ResolvedAt: now, ScheduledFor: now, CreatedAt: now, UpdatedAt: now}
			var pid int
			err := f.app.RunInTx(f.ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
				if err := tx.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &pid); err != nil {
					return err
				}
				return db.InsertNewSurvey(ctx, tx, sv)
			})
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if q := lastMessage(t, f, pid); tc.wantErr == nil && (!strings.Contains(q, `INSERT INTO "surveys"`) || !strings.HasSuffix(q, "COMMIT")) {
				t.Errorf("the insert did not ride with the COMMIT: %q", q)
			}
			var n int
			if err := f.admin.NewRaw("SELECT count(*) FROM surveys WHERE id = ?", sv.ID).Scan(context.Background(), &n); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.wantErr == nil]; n != want {
				t.Fatalf("%d rows stored, want %d", n, want)
			}
		})
	}
}
