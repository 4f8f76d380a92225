// Package db holds the Bun models, the migrations and the queries. Every
// query of tenant data takes the tenant id explicitly.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/migrate"

	"github.com/csat/csat/db/migrations"
	"github.com/csat/csat/errs"
)

// StatementTimeout bounds every statement on the server (statement_timeout):
// cancelling a context does not stop a query there.
const StatementTimeout = 30 * time.Second

// Open connects to Postgres. Connecting and sending give up after 5 s; the
// wait for an answer outlasts StatementTimeout, so a long statement ends
// with the server's own timeout error rather than the client dropping the
// connection while the server still runs it (a 5 s read timeout used to
// fail CREATE DATABASE and any statement between 5 and 30 s this way).
func Open(dsn string, maxConns int) (*bun.DB, error) {
	return open(dsn, maxConns, StatementTimeout+5*time.Second, map[string]any{
		"statement_timeout": fmt.Sprintf("%dms", StatementTimeout.Milliseconds()),
	})
}

// MigrationLockTimeout bounds how long a migration's statement waits for a
// lock: one queued behind a long transaction would hold every later query
// of its table behind it, an outage of the running service.
const MigrationLockTimeout = 10 * time.Second

// OpenOwner connects as the schema's owner to migrate. A migration's
// statement runs as long as it needs (an index built on a table of
// millions of rows takes minutes, far past StatementTimeout, and would
// fail halfway on every start), but waits at most MigrationLockTimeout for
// a lock; it then fails, and the next start tries again.
func OpenOwner(dsn string) (*bun.DB, error) {
	return open(dsn, 2, 0, map[string]any{
		"statement_timeout": "0",
		"lock_timeout":      fmt.Sprintf("%dms", MigrationLockTimeout.Milliseconds()),
	})
}

// open connects with these session settings; a read timeout of 0 waits as
// long as the context allows.
func open(dsn string, maxConns int, readTimeout time.Duration, params map[string]any) (*bun.DB, error) {
	connector := pgdriver.NewConnector(
		pgdriver.WithDSN(dsn),
		pgdriver.WithConnParams(params),
		pgdriver.WithDialTimeout(5*time.Second),
		pgdriver.WithWriteTimeout(5*time.Second),
		pgdriver.WithReadTimeout(readTimeout),
	)
	sqldb := sql.OpenDB(bindingConnector{connector})
	if maxConns <= 0 {
		maxConns = 20
	}
	sqldb.SetMaxOpenConns(maxConns)
	sqldb.SetMaxIdleConns(maxConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	// A column that a newer migration added is skipped when scanning, not
	// an error: in a rolling deploy the old processes read tables the new
	// one has migrated.
	return bun.NewDB(sqldb, pgdialect.New(), bun.WithDiscardUnknownColumns()), nil
}

// EnsureDatabase creates the database named in dsn if it does not exist,
// connecting to the "postgres" database of the same server to do so.
func EnsureDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return nil
	}
	admin := *u
	admin.Path = "/postgres"
	adb, err := Open(admin.String(), 1)
	if err != nil {
		return err
	}
	defer adb.Close()
	var exists bool
	if err := adb.NewRaw("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)", name).Scan(ctx, &exists); err != nil {
		return fmt.Errorf("check database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := adb.ExecContext(ctx, "CREATE DATABASE ?", bun.Ident(name)); err != nil {
		var pgErr pgdriver.Error
		if errors.As(err, &pgErr) && pgErr.Field('C') == "42P04" { // created concurrently
			return nil
		}
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// Migrate applies every pending migration under the migrator's lock, so
// several processes starting together migrate once. bdb is the owner's
// connection from OpenOwner.
func Migrate(ctx context.Context, bdb *bun.DB) error {
	m := migrate.NewMigrator(bdb, migrations.Migrations)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	defer m.Unlock(ctx) //nolint:errcheck
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// RetryTx runs fn, a whole transaction, again (up to three times in all)
// when it failed before committing for a reason a retry removes: Postgres
// aborted it to break a deadlock (40P01; the victim is chosen arbitrarily),
// or a prepared statement of its connection was lost or no longer fits its
// table (errPreparedLost: a migration added a column; the connection is
// given up and the retry runs on another, which prepares afresh).
func RetryTx(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = fn(); !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// retryable reports whether RetryTx runs a transaction that failed with err
// again: a deadlock's victim (40P01) or a lost prepared statement.
func retryable(err error) bool {
	return hasCode(err, "40P01") || errors.Is(err, errPreparedLost)
}

// ErrLockedRowChanged: a row the transaction holds locked was not as the
// transaction read it (UpdateLockedSurvey). Nothing else can change a
// locked row: this is a bug, never the caller's doing.
var ErrLockedRowChanged = errors.New("db: a locked row is not as it was read")

// ErrConversationTaken: the tenant already has a survey for the
// conversation; a concurrent intake stored it (InsertNewSurvey).
var ErrConversationTaken = errors.New("db: the conversation already has a survey")

// conversationKey is the unique constraint on (tenant_id, conversation_id).
const conversationKey = "surveys_tenant_id_conversation_id_key"

// expectFailed is the SQLSTATE csat_expect raises (its migration).
const expectFailed = "CS001"

// mapErr turns driver errors into domain errors once, here.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return errs.ErrNotFound
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) && pgErr.Field('C') == "23505" && pgErr.Field('n') == conversationKey {
		return fmt.Errorf("%w: %w", ErrConversationTaken, &errs.Error{Code: errs.Conflict, Message: "the conversation already has a survey"})
	}
	if errors.As(err, &pgErr) && pgErr.IntegrityViolation() {
		return &errs.Error{Code: errs.Conflict, Message: "conflicts with existing data"}
	}
	if errors.As(err, &pgErr) && pgErr.Field('C') == expectFailed {
		return fmt.Errorf("%w: %s", ErrLockedRowChanged, pgErr.Field('M'))
	}
	if errors.As(err, &pgErr) && (pgErr.Field('C') == "22021" || pgErr.Field('C') == "22P05") {
		// Text Postgres cannot store (a NUL byte, invalid UTF-8) came from
		// outside: the caller's mistake, not ours.
		return &errs.Error{Code: errs.Invalid, Message: "text must be valid UTF-8 without NUL characters"}
	}
	return err
}

// IsUnavailable reports whether err means Postgres could not be reached
// or would not take a connection: connection errors (class 08), an
// administrator's shutdown (57P01) or start-up (57P03), and a server
// full (53300 too_many_connections: max_connections taken, or the
// database's or role's CONNECTION LIMIT), all of which pass.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		c := pgErr.Field('C')
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P03" || c == "53300"
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "connection reset") || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(s, "i/o timeout") || strings.Contains(s, "EOF")
}
