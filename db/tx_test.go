package db_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/uptrace/bun"
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
