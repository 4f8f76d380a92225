package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

// Bun sends every statement as text, which Postgres parses, rewrites with
// the tables' row-level-security policies and plans anew each time. For
// the REST list's first page that was most of Postgres's work: the same
// statement prepared once and run with a generic plan answered about
// twice as often (pgbench, 100,000 surveys). A preparedQuery is such a
// statement: each pooled connection prepares it once (SQL PREPARE, in a
// message of its own), and then runs it by name (EXECUTE) in the same
// one-message simple protocol as any statement, tenant binding included.
//
// The plan is the generic one (plan_cache_mode = force_generic_plan, set
// LOCAL with the EXECUTE): with a parameter for LIMIT, Postgres would
// otherwise keep planning each run, its generic estimate of an unknown
// limit being worse than any custom plan's. Only statements whose plan
// does not depend on the values belong here (a tenant's newest surveys
// are the primary key read backwards, whoever the tenant and whatever the
// page).
type preparedQuery struct {
	name    string // a statement name, [a-z_]
	prepare string // PREPARE name (types) AS body
	call    string // its EXECUTE, with a placeholder per parameter
	// generic: its EXECUTE forces the generic plan with a SET LOCAL, so it
	// runs outside transactions (newPrepared, not newKeyPrepared).
	generic bool
}

// newPrepared is the statement body with parameters $1... of the given
// types (comma-separated).
func newPrepared(name, types, body string) *preparedQuery {
	return makePrepared(name, types, body, true)
}

func makePrepared(name, types, body string, generic bool) *preparedQuery {
	call := "EXECUTE " + name + "(" + strings.Repeat("?, ", strings.Count(types, ",")) + "?)"
	if generic {
		call = "SET LOCAL plan_cache_mode = force_generic_plan; " + call
	}
	return &preparedQuery{name: name, prepare: "PREPARE " + name + " (" + types + ") AS " + body, call: call, generic: generic}
}

// newKeyPrepared is a statement that finds its rows by key, such as the
// reads and the update of a one-click: Postgres chooses its plan
// (plan_cache_mode auto: a custom plan for each of the first five runs,
// then the generic one, which for a lookup by key is the same plan), so its
// EXECUTE carries no SET LOCAL and it may run inside a transaction. Bun's
// text made Postgres plan these statements at every run, and planning them
// cost more than running them: the locked read of a survey by its token
// 0.19 ms to plan and 0.07 ms to run, the intake's read 0.31 and 0.07 ms,
// an answer's update 0.11 and 0.33 ms (pg_stat_statements with
// track_planning, 100,000 surveys).
func newKeyPrepared(name, types, body string) *preparedQuery {
	return makePrepared(name, types, body, false)
}

// shapes prepares statements built as text with $n parameters (params):
// one prepared statement per distinct body, named by its hash, up to max
// bodies; past the cap statement returns nil and the caller runs its
// statement as text. Bodies that differ by their shape only (columns,
// cursors, how many parts a union has) stay few; the cap guards against a
// caller whose shapes do not.
type shapes struct {
	prefix string // of the statements' names
	max    int
	mu     sync.Mutex
	byBody map[string]*preparedQuery
}

// statement returns the prepared statement (forced generic plan) of body,
// whose parameters are of the given types, or nil when the shapes are all
// taken.
func (s *shapes) statement(body string, types []string) *preparedQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byBody[body]
	if p == nil {
		if len(s.byBody) >= s.max {
			return nil
		}
		h := fnv.New64a()
		h.Write([]byte(body))
		p = newPrepared(fmt.Sprintf("%s_%016x", s.prefix, h.Sum64()), strings.Join(types, ", "), body)
		if s.byBody == nil {
			s.byBody = map[string]*preparedQuery{}
		}
		s.byBody[body] = p
	}
	return p
}

// maxShapes caps the statements a shapes prepares per process.
const maxShapes = 64

// params collects a statement's arguments as $n parameters of its body.
type params struct {
	args  []any
	types []string
}

// add appends v, of the Postgres type typ, and returns its placeholder.
func (p *params) add(v any, typ string) bun.Safe {
	p.args, p.types = append(p.args, v), append(p.types, typ)
	return bun.Safe(fmt.Sprintf("$%d", len(p.args)))
}

type preparedKey struct{}

// scan runs the statement with args (formatted by Bun) and scans its rows
// into dest as Bun's raw queries do.
func (p *preparedQuery) scan(ctx context.Context, idb bun.IDB, dest any, args ...any) error {
	return idb.NewRaw(p.call, args...).Scan(context.WithValue(ctx, preparedKey{}, p), dest)
}

// exec runs the statement with args; with ctx from WithDeferred, inside a
// transaction, it rides with the transaction's next message.
func (p *preparedQuery) exec(ctx context.Context, idb bun.IDB, args ...any) error {
	_, err := idb.NewRaw(p.call, args...).Exec(context.WithValue(ctx, preparedKey{}, p))
	return err
}

// query runs the statement with args (one per parameter, formatted by Bun)
// outside a transaction.
func (p *preparedQuery) query(ctx context.Context, idb bun.IDB, args ...any) (*sql.Rows, error) {
	return idb.QueryContext(context.WithValue(ctx, preparedKey{}, p), p.call, args...)
}

// ErrPreparedInTx: a prepared statement with a forced generic plan
// (newPrepared) carries a SET LOCAL in its EXECUTE that would last to the
// end of a transaction; it runs outside one.
var ErrPreparedInTx = errors.New("db: prepared statements with a forced generic plan run outside transactions")

// usePrepared makes sure the connection prepared the statement ctx asks
// for, if any.
func (c *bindingConn) usePrepared(ctx context.Context) (*preparedQuery, error) {
	p, _ := ctx.Value(preparedKey{}).(*preparedQuery)
	if p == nil {
		return nil, nil
	}
	if c.failed {
		return nil, errTxAborted
	}
	if c.inTx() && p.generic {
		return nil, ErrPreparedInTx
	}
	if e := preparedEpoch.Load(); c.epoch != e {
		// Another connection found its statements stale since this one
		// prepared: these are too (a migration changes them all).
		if len(c.prepared) > 0 {
			if _, err := c.pgConn.ExecContext(ctx, "DEALLOCATE ALL", nil); err != nil {
				return nil, fmt.Errorf("deallocate stale statements: %w", err)
			}
			clear(c.prepared)
		}
		c.epoch = e
	}
	if c.prepared[p.name] {
		return p, nil
	}
	// A message of its own. In a transaction whose BEGIN is still to be
	// sent, it runs before the transaction; in one begun, inside it, and a
	// prepared statement outlives a rollback. If it fails there, the
	// transaction is aborted and the caller's statement fails with it.
	if _, err := c.pgConn.ExecContext(ctx, p.prepare, nil); err != nil && !hasCode(err, "42P05") { // 42P05: already prepared
		return nil, fmt.Errorf("prepare %s: %w", p.name, err)
	}
	if c.prepared == nil {
		c.prepared = map[string]bool{}
	}
	c.prepared[p.name] = true
	return p, nil
}

// errPreparedLost: a prepared statement was gone or no longer fit its table.
var errPreparedLost = errors.New("db: prepared statement lost")

// preparedEpoch counts the times a connection of this process found a
// prepared statement lost or stale. After a migration every pooled
// connection holds stale statements: a connection that prepared before the
// last finding starts afresh (DEALLOCATE ALL) before its next prepared
// statement, so the transaction RetryTx runs again does not meet another
// stale one.
var preparedEpoch atomic.Int64

// preparedErr is the error of a prepared statement's run. When the
// statement is gone (26000: no such prepared statement) or its plan can no
// longer answer its columns (0A000: a migration added or changed a column
// under a running process; this lasts as long as the statement), the
// connection is given up: marked broken, so database/sql closes it when it
// comes back (IsValid), and the error is driver.ErrBadConn, so a query
// outside a transaction runs again at once on another connection, which
// prepares the statement afresh. A transaction fails with errPreparedLost,
// which RetryTx runs again.
func (c *bindingConn) preparedErr(p *preparedQuery, err error) error {
	if p == nil || err == nil {
		return err
	}
	if hasCode(err, "26000") || hasCode(err, "0A000") {
		c.broken = true
		preparedEpoch.Add(1)
		return fmt.Errorf("%s: %w (%w, %w)", p.name, driver.ErrBadConn, errPreparedLost, err)
	}
	return err
}

// IsValid reports whether database/sql may keep the connection.
func (c *bindingConn) IsValid() bool { return !c.broken && c.pgConn.IsValid() }

// ResetSession refuses a broken connection before its next use.
func (c *bindingConn) ResetSession(ctx context.Context) error {
	if c.broken {
		return driver.ErrBadConn
	}
	return c.pgConn.ResetSession(ctx)
}

func hasCode(err error, code string) bool {
	var pe pgdriver.Error
	return errors.As(err, &pe) && pe.Field('C') == code
}
