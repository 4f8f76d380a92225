package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/csat/csat/errs"
)

// Row-level security is the second tenant wall. Every tenant table has
// FORCE ROW LEVEL SECURITY and the policy
//
//	tenant_id = current_setting('app.tenant_id', true)
//
// and the service connects as AppRole, which neither owns the tables nor
// bypasses RLS. A query that forgets its tenant filter returns nothing.
//
// The tenant is bound per statement from the context: WithTenant puts it
// there and the connection wrapper below sends
//
//	SET LOCAL app.tenant_id = '<id>'; <the query>
//
// as one simple-protocol message. Postgres runs a multi-statement message
// as one (implicit) transaction, so the setting lasts exactly as long as the
// query and never leaks to the next user of the pooled connection; inside
// an explicit transaction it lasts until COMMIT. One round trip, as without
// RLS. survey.Service.read/tx are the one place that call WithTenant.

// AppRole is the role the service connects as. The migrations create it
// (LOGIN without a password: usable with trust auth on a developer machine,
// unusable elsewhere until an operator sets a password) and grant it
// SELECT/INSERT/UPDATE/DELETE on the tables, never ownership.
const AppRole = "csat_app"

type bindKey int

const (
	tenantBindKey bindKey = iota
	keyHashBindKey
	asyncCommitKey
)

// WithTenant returns ctx whose statements see only this tenant's rows.
func WithTenant(ctx context.Context, tenantID string) context.Context {
	return context.WithValue(ctx, tenantBindKey, tenantID)
}

// BoundTenant returns the tenant ctx is bound to, if any.
func BoundTenant(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(tenantBindKey).(string)
	return id, ok && id != ""
}

// withAPIKeyHash returns ctx whose statements may see the one api_keys row
// with this hash (policy api_keys_lookup): authentication finds a key's
// tenant without seeing any other tenant's keys.
func withAPIKeyHash(ctx context.Context, hash []byte) context.Context {
	return context.WithValue(ctx, keyHashBindKey, hex.EncodeToString(hash))
}

// WithAsyncCommit returns ctx whose statements' transaction commits without
// waiting for its WAL to reach the disk (SET LOCAL synchronous_commit =
// off, sent with each statement like the tenant binding): the commit costs
// no disk flush of its own, the WAL writer flushes it within 3 x
// wal_writer_delay (600 ms by default) or the next synchronous commit does.
// A crash of Postgres (or a failover) in that window loses the transaction
// as if it never ran; nothing is corrupted. Only for writes whose loss the
// service recovers from: the send's handoff mark (survey.Service.
// AsyncHandoff).
func WithAsyncCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, asyncCommitKey, true)
}

// AsyncCommit reports whether ctx asks for WithAsyncCommit.
func AsyncCommit(ctx context.Context) bool {
	on, _ := ctx.Value(asyncCommitKey).(bool)
	return on
}

var errUnsafeTenant = errors.New("db: tenant id has characters outside [A-Za-z0-9_-]")

// safeSetting reports whether v can be sent inside a SQL string literal
// without escaping: ids are [0-9a-z_], hashes hex.
func safeSetting(v string) bool {
	if len(v) == 0 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidTenantID reports whether id could be a tenant id; anything else
// (from a hostile token, say) cannot be bound and is simply unknown.
func ValidTenantID(id string) bool { return strings.HasPrefix(id, "ten_") && safeSetting(id) }

// bindPrefix is the SET LOCAL statements ctx asks for, or "".
func bindPrefix(ctx context.Context) (string, error) {
	var b strings.Builder
	if id, ok := BoundTenant(ctx); ok {
		if !safeSetting(id) {
			return "", errUnsafeTenant
		}
		b.WriteString("SET LOCAL app.tenant_id = '" + id + "'; ")
	}
	if h, ok := ctx.Value(keyHashBindKey).(string); ok && h != "" {
		b.WriteString("SET LOCAL app.api_key_hash = '" + h + "'; ")
	}
	if AsyncCommit(ctx) {
		b.WriteString("SET LOCAL synchronous_commit = off; ")
	}
	return b.String(), nil
}

// bindingConnector wraps the pgdriver connector so every statement run
// with a bound context carries its SET LOCAL prefix.
type bindingConnector struct{ driver.Connector }

func (c bindingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &bindingConn{pgConn: cn.(pgConn)}, nil
}

// pgConn is what *pgdriver.Conn implements and database/sql uses.
type pgConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.Validator
	driver.SessionResetter
}

// bindingConn is one pooled connection. database/sql uses a connection
// from one goroutine at a time, so its fields need no lock.
//
// Transactions begin lazily: BeginTx only remembers the BEGIN, and the
// transaction's first statement carries it in the same message
// ("BEGIN; SET LOCAL ...; <query>"), which saves every transaction a round
// trip. A transaction that runs no statement sends nothing at all.
//
// Writes whose outcome the code does not read (WithDeferred) wait likewise
// for the transaction's next message, usually its COMMIT: "<update>;
// COMMIT" is one round trip where the update and the COMMIT were two.
// Postgres stops a message at its first error, so a deferred write that
// fails leaves the COMMIT unrun and the transaction aborted; its error is
// the carrying statement's (or the commit's), and the transaction rolls
// back.
type bindingConn struct {
	pgConn
	begin string // the BEGIN of a transaction whose first statement is not sent yet
	// deferred are the statements (each with its BEGIN and SET LOCAL
	// prefix, as prepare made it) that ride with the next message;
	// deferredBegin: they hold the transaction's BEGIN.
	deferred      string
	deferredBegin bool
	// failed: a message that carried the BEGIN or deferred statements
	// failed. Postgres parses a whole message before running it, so after a
	// syntax error there neither the BEGIN nor the deferred writes ran; the
	// transaction's later statements are then refused here, as Postgres
	// refuses them in an aborted transaction, and can never run outside it
	// or commit without those writes.
	failed bool
	txOpen bool // between BeginTx and the transaction's end
	// prepared are the statements this connection prepared (preparedQuery).
	prepared map[string]bool
	broken   bool  // a prepared statement was lost: never reuse (preparedErr)
	epoch    int64 // preparedEpoch when prepared was last known good
}

var errTxAborted = errors.New("db: current transaction is aborted, commands ignored until end of transaction block")

// beginCommand is the BEGIN pgdriver sends for opts.
func beginCommand(opts driver.TxOptions) (string, error) {
	cmd := "BEGIN"
	switch iso := sql.IsolationLevel(opts.Isolation); iso {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted, sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable:
		cmd += " ISOLATION LEVEL " + strings.ToUpper(iso.String())
	default:
		return "", fmt.Errorf("db: unsupported transaction isolation: %s", iso)
	}
	if opts.ReadOnly {
		cmd += " READ ONLY"
	}
	return cmd, nil
}

func (c *bindingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *bindingConn) BeginTx(_ context.Context, opts driver.TxOptions) (driver.Tx, error) {
	cmd, err := beginCommand(opts)
	if err != nil {
		return nil, err
	}
	c.begin, c.failed, c.deferred, c.deferredBegin, c.txOpen = cmd, false, "", false, true
	return lazyTx{c}, nil
}

// lazyTx ends a transaction begun by bindingConn.BeginTx.
type lazyTx struct{ c *bindingConn }

func (tx lazyTx) Commit() error { return tx.c.commit(context.Background()) }

func (tx lazyTx) Rollback() error { return tx.c.rollback(context.Background()) }

func (c *bindingConn) commit(ctx context.Context) error {
	c.txOpen = false
	if c.failed {
		// A deferred write may not have run: never commit without it.
		_ = c.rollback(ctx)
		return errTxAborted
	}
	if c.begin != "" { // no statement ran: there is nothing to end
		c.begin = ""
		return nil
	}
	deferred := c.deferred
	c.deferred, c.deferredBegin = "", false
	_, err := c.pgConn.ExecContext(ctx, deferred+"COMMIT", nil)
	if err != nil && deferred != "" {
		// The message stopped at the failing write: the COMMIT did not
		// run and the transaction is aborted (or, after a syntax error in
		// a message that held the BEGIN, never began: the ROLLBACK is then
		// only a warning). database/sql hands the connection back after a
		// failed Commit, so end the transaction here.
		if _, rerr := c.pgConn.ExecContext(ctx, "ROLLBACK", nil); rerr != nil {
			return errors.Join(deferredErr("commit", err), driver.ErrBadConn)
		}
		return deferredErr("commit", err)
	}
	return err
}

func (c *bindingConn) rollback(ctx context.Context) error {
	begun := c.begin == "" && !c.deferredBegin // the BEGIN reached the server
	c.begin, c.deferred, c.deferredBegin, c.failed, c.txOpen = "", "", false, false, false
	if !begun { // nothing ran: there is nothing to end
		return nil
	}
	_, err := c.pgConn.ExecContext(ctx, "ROLLBACK", nil)
	return err
}

// errBadText refuses a query Postgres cannot take: the simple protocol
// sends it as a C string, so a NUL byte from outside input (a path
// parameter like %00) cannot be sent (Bun 1.3 formats such a value as the
// marker below, a syntax error), and invalid UTF-8 fails on the server.
// Both are the client's mistake: a 400 on every route, present and future,
// instead of a 500.
var errBadText = &errs.Error{Code: errs.Invalid, Message: "text must be valid UTF-8 without NUL characters"}

const bunNULMarker = "!(bun: string contains a NUL byte"

func checkQueryText(q string) error {
	if strings.IndexByte(q, 0) >= 0 || strings.Contains(q, bunNULMarker) || !utf8.ValidString(q) {
		return errBadText
	}
	return nil
}

// prepare checks a query and prefixes what ctx binds and, for the first
// statement of a transaction, its BEGIN, after the deferred statements
// waiting for a message. sent must be called once the message went out,
// with its error.
func (c *bindingConn) prepare(ctx context.Context, query string) (string, error) {
	if c.failed {
		return "", errTxAborted
	}
	if err := checkQueryText(query); err != nil {
		return "", err
	}
	p, err := bindPrefix(ctx)
	if err != nil {
		return "", err
	}
	if c.begin != "" {
		p = c.begin + "; " + p
	}
	return c.deferred + p + query, nil
}

// sent records that the message prepare made went out, with err.
func (c *bindingConn) sent(err error) {
	if c.begin != "" || c.deferred != "" {
		c.failed = err != nil
	}
	c.begin, c.deferred, c.deferredBegin = "", "", false
}

// deferredErr wraps the error of a message that carried deferred
// statements: any of them may be what failed, or what followed them.
func deferredErr(what string, err error) error {
	return fmt.Errorf("deferred writes or %s: %w", what, mapErr(err))
}

type deferKey struct{}

// WithDeferred returns ctx whose Exec, inside a transaction, is sent with
// the transaction's next message (its next statement or its COMMIT)
// instead of a message of its own. Only for a statement whose result the
// caller does not read: its Result knows nothing, and any error it raises
// is the carrier's. Outside a transaction the statement runs at once.
func WithDeferred(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferKey{}, true)
}

// errDeferredResult is what a deferred statement's Result answers.
var errDeferredResult = errors.New("db: a deferred statement's result is not known")

type deferredResult struct{}

func (deferredResult) LastInsertId() (int64, error) { return 0, errDeferredResult }
func (deferredResult) RowsAffected() (int64, error) { return 0, errDeferredResult }

func (c *bindingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	p, err := c.usePrepared(ctx)
	if err != nil {
		return nil, err
	}
	if d, _ := ctx.Value(deferKey{}).(bool); d && len(args) == 0 && c.inTx() {
		// Bun formats its arguments itself: a deferred statement is
		// complete text, sent as it is later.
		q, err := c.prepare(ctx, query)
		if err != nil {
			return nil, err
		}
		c.deferredBegin = c.deferredBegin || c.begin != ""
		c.begin, c.deferred = "", q+"; "
		return deferredResult{}, nil
	}
	if len(args) > 0 && c.deferred != "" {
		// pgdriver formats the placeholders of the whole message: the
		// deferred text must not be read for them.
		if err := c.flush(ctx); err != nil {
			return nil, err
		}
	}
	q, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := c.pgConn.ExecContext(ctx, q, args)
	if err != nil && c.deferred != "" {
		err = deferredErr("statement", err)
	}
	c.sent(err)
	return res, c.preparedErr(p, err)
}

// inTx reports whether the connection is inside a transaction begun by
// BeginTx. pgdriver's own transactions never start here: BeginTx is ours.
func (c *bindingConn) inTx() bool { return c.txOpen }

func (c *bindingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) > 0 && c.deferred != "" {
		if err := c.flush(ctx); err != nil { // as in ExecContext
			return nil, err
		}
	}
	p, err := c.usePrepared(ctx)
	if err != nil {
		return nil, err
	}
	q, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := c.pgConn.QueryContext(ctx, q, args)
	if err != nil && c.deferred != "" {
		err = deferredErr("query", err)
	}
	c.sent(err)
	return rows, c.preparedErr(p, err)
}

// PrepareContext sends a pending BEGIN and deferred statements on their own
// first: a prepared statement is not one message with them. (Bun does not
// prepare; this keeps database/sql's Prepare correct all the same.)
func (c *bindingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.flush(ctx); err != nil {
		return nil, err
	}
	return c.pgConn.PrepareContext(ctx, query)
}

// flush sends a pending BEGIN or the deferred statements (deferring a
// statement sends the BEGIN with it: one of the two) in a message of their
// own.
func (c *bindingConn) flush(ctx context.Context) error {
	if c.failed {
		return errTxAborted
	}
	if c.begin == "" && c.deferred == "" {
		return nil
	}
	_, err := c.pgConn.ExecContext(ctx, c.deferred+c.begin, nil)
	if err != nil && c.deferred != "" {
		err = deferredErr("flush", err)
	}
	c.sent(err)
	return err
}

// AppDSN is the service's connection when APP_DATABASE_URL is unset: the
// owner's DSN with the user replaced by AppRole and no password.
func AppDSN(ownerDSN string) string {
	u, err := url.Parse(ownerDSN)
	if err != nil {
		return ownerDSN
	}
	u.User = url.User(AppRole)
	return u.String()
}

// BypassesRLS reports whether the connection's role sees every tenant's
// rows regardless of policies (a superuser or a BYPASSRLS role), so the
// service can warn that its second wall is down.
func BypassesRLS(ctx context.Context, idb bun.IDB) (role string, bypass bool, err error) {
	err = idb.NewRaw(`SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).
		Scan(ctx, &role, &bypass)
	return role, bypass, err
}
