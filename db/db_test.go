package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/csat/csat/db"
	"github.com/csat/csat/testenv"
)

// TestStatementsMayRunPastFiveSeconds: the client waits for a statement as
// long as the server lets it run. Connecting and sending give up after 5 s;
// waiting for an answer used to as well, so a statement of 5 to 30 s (a
// CREATE DATABASE on a busy machine, a large export page) lost its
// connection while the server kept running it.
func TestStatementsMayRunPastFiveSeconds(t *testing.T) {
	t.Parallel()
	bdb, err := db.Open(testenv.AdminDSN(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var slept string
	if err := bdb.NewRaw("SELECT pg_sleep(5.5)::text").Scan(context.Background(), &slept); err != nil {
		t.Fatalf("a 5.5 s statement: %v", err)
	}
}

// TestStatementTimeoutIsTheServers: every connection carries
// db.StatementTimeout, and a statement past its timeout ends with the
// server's error (SQLSTATE 57014), not the client's i/o timeout; the pool
// serves the next statement (the driver replaces a cancelled connection).
func TestStatementTimeoutIsTheServers(t *testing.T) {
	t.Parallel()
	bdb, err := db.Open(testenv.AdminDSN(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	ctx := context.Background()
	var setting string
	if err := bdb.NewRaw("SELECT current_setting('statement_timeout')").Scan(ctx, &setting); err != nil {
		t.Fatal(err)
	}
	if setting != db.StatementTimeout.String() {
		t.Fatalf("statement_timeout %q, want %q", setting, db.StatementTimeout)
	}
	// A shorter timeout for one transaction (the client's read timeout,
	// StatementTimeout + 5 s, is far off).
	err = bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = '200ms'"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "SELECT pg_sleep(2)")
		return err
	})
	var pgErr pgdriver.Error
	if !errors.As(err, &pgErr) || pgErr.Field('C') != "57014" {
		t.Fatalf("statement past its timeout: %v, want the server's 57014 (query_canceled)", err)
	}
	var one int
	if err := bdb.NewRaw("SELECT 1").Scan(ctx, &one); err != nil || one != 1 {
		t.Fatalf("the statement after: %d, %v", one, err)
	}
}

// TestOwnerRunsLongStatementsButWaitsBrieflyForLocks: the migrations'
// connection has no statement timeout (an index build on a large table
// runs for minutes) and no client read timeout, but gives up on a lock
// after db.MigrationLockTimeout instead of queueing the service's queries
// behind it.
func TestOwnerRunsLongStatementsButWaitsBrieflyForLocks(t *testing.T) {
	t.Parallel()
	bdb, err := db.OpenOwner(testenv.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var stmt, lock string
	if err := bdb.NewRaw("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')").Scan(context.Background(), &stmt, &lock); err != nil {
		t.Fatal(err)
	}
	if stmt != "0" || lock != db.MigrationLockTimeout.String() {
		t.Fatalf("owner's statement_timeout %q and lock_timeout %q, want \"0\" and %q", stmt, lock, db.MigrationLockTimeout)
	}
}
