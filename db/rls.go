package db

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
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
	return bindingConn{cn.(pgConn)}, nil
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

type bindingConn struct{ pgConn }

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

func (c bindingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := checkQueryText(query); err != nil {
		return nil, err
	}
	p, err := bindPrefix(ctx)
	if err != nil {
		return nil, err
	}
	return c.pgConn.ExecContext(ctx, p+query, args)
}

func (c bindingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := checkQueryText(query); err != nil {
		return nil, err
	}
	p, err := bindPrefix(ctx)
	if err != nil {
		return nil, err
	}
	return c.pgConn.QueryContext(ctx, p+query, args)
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
