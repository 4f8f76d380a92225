package db

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// SurveyFilter narrows a survey list. Zero fields do not filter.
type SurveyFilter struct {
	Statuses    []string
	SentFrom    *time.Time // inclusive
	SentTo      *time.Time // exclusive
	Ratings     []int
	AgentID     string
	TeamID      string
	Channel     string
	HasFeedback *bool
	Search      string // substring of conversation id, email or name
}

func (f SurveyFilter) query(q *bun.SelectQuery) *bun.SelectQuery {
	if len(f.Statuses) > 0 {
		q = q.Where("s.status IN (?)", bun.List(f.Statuses))
	}
	if f.SentFrom != nil {
		q = q.Where("s.sent_at >= ?", *f.SentFrom)
	}
	if f.SentTo != nil {
		q = q.Where("s.sent_at < ?", *f.SentTo)
	}
	if len(f.Ratings) > 0 {
		q = q.Where("s.rating IN (?)", bun.List(f.Ratings))
	}
	if f.AgentID != "" {
		q = q.Where("s.agent_id = ?", f.AgentID)
	}
	if f.TeamID != "" {
		q = q.Where("s.team_id = ?", f.TeamID)
	}
	if f.Channel != "" {
		q = q.Where("s.channel = ?", f.Channel)
	}
	if f.HasFeedback != nil {
		if *f.HasFeedback {
			q = q.Where("s.feedback IS NOT NULL AND s.feedback <> ''")
		} else {
			q = q.Where("(s.feedback IS NULL OR s.feedback = '')")
		}
	}
	if f.Search != "" {
		like := "%" + escapeLike(f.Search) + "%"
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("s.conversation_id ILIKE ?", like).
				WhereOr("s.contact_email ILIKE ?", like).
				WhereOr("s.contact_name ILIKE ?", like)
		})
	}
	return q
}

func escapeLike(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}

// byTenant scopes a query to one tenant; every survey query applies it.
func byTenant(tenantID string) func(*bun.SelectQuery) *bun.SelectQuery {
	return func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("s.tenant_id = ?", tenantID) }
}

// InsertSurvey stores s unless the tenant already has a survey for its
// conversation; created reports which happened, and s holds the stored row.
func InsertSurvey(ctx context.Context, idb bun.IDB, s *Survey) (created bool, err error) {
	res, err := idb.NewInsert().Model(s).
		On("CONFLICT (tenant_id, conversation_id) DO NOTHING").
		Returning("*").
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("insert survey: %w", mapErr(err))
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	existing, err := GetSurveyByConversation(ctx, idb, s.TenantID, s.ConversationID)
	if err != nil {
		return false, fmt.Errorf("load existing survey: %w", err)
	}
	*s = *existing
	return false, nil
}

// InsertNewSurvey stores s, the survey of a conversation the transaction
// found without one (GetIntakeState). The insert is deferred
// (WithDeferred): it goes out with the transaction's next message, usually
// its COMMIT, one round trip less than InsertSurvey. If a concurrent
// transaction stored a survey for the same conversation meanwhile, that
// message fails with ErrConversationTaken and the transaction rolls back.
func InsertNewSurvey(ctx context.Context, tx bun.Tx, s *Survey) error {
	// No RETURNING (Bun would ask for the columns it sends as DEFAULT):
	// a statement with rows is a query, and queries are not deferred.
	if _, err := tx.NewInsert().Model(s).Returning("NULL").Exec(WithDeferred(ctx)); err != nil {
		return fmt.Errorf("insert survey: %w", mapErr(err))
	}
	return nil
}

// GetSurvey loads one survey of the tenant.
func GetSurvey(ctx context.Context, idb bun.IDB, tenantID, id string) (*Survey, error) {
	s := new(Survey)
	if err := idb.NewSelect().Model(s).Apply(byTenant(tenantID)).Where("s.id = ?", id).Scan(ctx); err != nil {
		return nil, mapErr(err)
	}
	return s, nil
}

// GetSurveysByIDs loads the tenant's surveys with these ids, in any order.
func GetSurveysByIDs(ctx context.Context, idb bun.IDB, tenantID string, ids []string) ([]Survey, error) {
	var out []Survey
	if len(ids) == 0 {
		return out, nil
	}
	err := idb.NewSelect().Model(&out).Apply(byTenant(tenantID)).Where("s.id IN (?)", bun.List(ids)).Scan(ctx)
	return out, mapErr(err)
}

// GetSurveyByConversation loads the tenant's survey for a conversation.
func GetSurveyByConversation(ctx context.Context, idb bun.IDB, tenantID, conversationID string) (*Survey, error) {
	s := new(Survey)
	err := idb.NewSelect().Model(s).Apply(byTenant(tenantID)).
		Where("s.conversation_id = ?", conversationID).Scan(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return s, nil
}

// GetSurveyByToken loads the tenant's survey whose token has this hash,
// locking the row FOR UPDATE (forUpdate) or FOR SHARE; either waits for a
// transaction that holds the row, such as a send in progress.
//
// Locking FOR UPDATE, it is the first statement of a change: it also reads
// the tenant's webhook targets when ctx waits for them (WithWebhookTargets).
// That read is prepared (tokenLock).
func GetSurveyByToken(ctx context.Context, idb bun.IDB, tenantID string, hash []byte, forUpdate bool) (*Survey, error) {
	var row tokenRow
	if !forUpdate {
		q := idb.NewSelect().Model(&row).ColumnExpr("s.*").Apply(byTenant(tenantID)).Where("s.token_hash = ?", hash).For("SHARE")
		if err := q.Scan(ctx); err != nil {
			return nil, mapErr(err)
		}
		return &row.Survey, nil
	}
	if err := tokenLock.scan(ctx, idb, tenantID, &row, &row.Targets, tenantID, hash); err != nil {
		return nil, err
	}
	return &row.Survey, nil
}

// tokenLock is the locked read of a survey by its token.
var tokenLock = newTargetsRead("csat_token_lock", "text, bytea", "s.tenant_id", func(columns string) string {
	return `SELECT s.*` + columns + ` FROM surveys AS s WHERE s.tenant_id = $1 AND s.token_hash = $2 FOR UPDATE OF s`
})

// tokenRow is a survey read by its token, with what the read may add: the
// tenant's webhook targets.
type tokenRow struct {
	Survey  `bun:",extend"`
	Targets []byte `bun:"webhook_targets,scanonly"`
}

// StoreAnswer writes the answer columns of s (rating, feedback,
// responded_at, status, flagged, last_clicks, and sent_at, which a click
// that outran its send's last commit sets), a survey the transaction read
// with GetSurveyByToken FOR UPDATE, as UpdateLockedSurvey does: deferred to
// the transaction's next message, failing it with ErrLockedRowChanged
// unless the row still has fromStatus. Prepared (answerUpdate); the columns
// it does not change are written as they were read, under the lock.
func StoreAnswer(ctx context.Context, tx bun.Tx, s *Survey, fromStatus string) error {
	s.UpdatedAt = time.Now().UTC()
	var clicks any
	if s.LastClicks != nil {
		clicks = pgdialect.Array(s.LastClicks)
	}
	err := answerUpdate.exec(WithDeferred(ctx), tx, s.TenantID, s.ID, s.Rating, s.Feedback, s.RespondedAt, s.Status,
		s.Flagged, clicks, s.SentAt, s.UpdatedAt, fromStatus, "survey "+s.ID+" changed under its lock")
	if err != nil {
		return fmt.Errorf("store answer: %w", mapErr(err))
	}
	return nil
}

var answerUpdate = newKeyPrepared("csat_answer_update",
	"text, text, smallint, text, timestamptz, text, boolean, timestamptz[], timestamptz, timestamptz, text, text",
	`UPDATE surveys SET rating = $3, feedback = $4, responded_at = $5, status = $6, flagged = $7,
		last_clicks = $8, sent_at = $9, updated_at = $10
	WHERE tenant_id = $1 AND id = $2 AND csat_expect(status = $11, $12)`)

// LockSurvey loads a survey and locks its row, skipping it (ErrNotFound)
// when another transaction holds the lock: that one is already at work.
func LockSurvey(ctx context.Context, tx bun.Tx, tenantID, id string) (*Survey, error) {
	s := new(Survey)
	err := tx.NewSelect().Model(s).Apply(byTenant(tenantID)).Where("s.id = ?", id).
		For("UPDATE SKIP LOCKED").Scan(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return s, nil
}

// ListSurveys returns one page of the tenant's surveys (ShownColumns),
// newest first, and how many match the filter in all (see CountSurveys).
// When the counters answer the total, page and total come in one statement
// (prepared, without a filter: listPage).
func ListSurveys(ctx context.Context, idb bun.IDB, tenantID string, f SurveyFilter, limit, offset int) ([]Survey, int, error) {
	var page *bun.SelectQuery
	if !f.empty() {
		page = idb.NewSelect().Model((*Survey)(nil)).Column(ShownColumns...).
			Apply(byTenant(tenantID)).Apply(f.query).
			OrderExpr("s.id DESC"). // ids sort by creation time
			Limit(int64(limit)).Offset(int64(offset))
	}
	if !f.countable() {
		rows, err := page.Rows(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("list surveys: %w", mapErr(err))
		}
		out, err := scanSurveys(rows, tenantID, ShownColumns, limit, 0, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("list surveys: %w", mapErr(err))
		}
		total, err := CountSurveys(ctx, idb, tenantID, f)
		return out, total, err
	}
	// One row with the total and NULL survey columns when the page is
	// empty; otherwise the total on every row.
	var rows *sql.Rows
	var err error
	if page == nil {
		rows, err = listPage.query(ctx, idb, tenantID, limit, offset)
	} else {
		rows, err = idb.QueryContext(ctx, "SELECT s.*, t.total FROM (?) AS t LEFT JOIN LATERAL (?) AS s ON true ORDER BY s.id DESC",
			countersQuery(idb, tenantID, f), page)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list surveys: %w", mapErr(err))
	}
	var total int64
	out, err := scanSurveys(rows, tenantID, ShownColumns, limit, 1, func(extra []any) (err error) {
		total, err = asInt(extra[0])
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list surveys: %w", mapErr(err))
	}
	if len(out) == 1 && out[0].ID == "" { // the empty page's row
		out = out[:0]
	}
	return out, int(total), nil
}

// listPage is ListSurveys's statement without a filter, the dashboard's and
// the API's usual page, prepared (see preparedQuery): $1 the tenant, $2
// the limit, $3 the offset. It is the statement the filtered pages build
// (countersQuery, then the page) with no filter; TestListPagePrepared
// compares the two.
var listPage = newPrepared("csat_list_page", "text, bigint, bigint", `SELECT s.*, t.total FROM (
	SELECT coalesce(sum(c.n), 0) AS total FROM (
		SELECT n FROM survey_counts WHERE tenant_id = $1
		UNION ALL SELECT d.sign::bigint FROM (`+unfoldedDeltas("$1")+`) AS d) AS c) AS t
	LEFT JOIN LATERAL (
		SELECT s.`+strings.Join(ShownColumns, ", s.")+` FROM surveys AS s WHERE s.tenant_id = $1
		ORDER BY s.id DESC LIMIT $2 OFFSET $3) AS s ON true
	ORDER BY s.id DESC`)

// UpdateLockedSurvey writes the given columns of s, a survey the
// transaction locked (FOR UPDATE) and read with status fromStatus. The
// write is deferred (WithDeferred): it goes out with the transaction's next
// message, usually its COMMIT, one round trip less, so it reports nothing.
// What UpdateSurvey's caller checks, that the row still had fromStatus,
// the statement checks itself (csat_expect): no other transaction can
// change or delete a locked row, so a mismatch is a caller's mistake, and
// it fails the transaction with ErrLockedRowChanged instead of committing.
func UpdateLockedSurvey(ctx context.Context, tx bun.Tx, s *Survey, fromStatus string, columns ...string) error {
	s.UpdatedAt = time.Now().UTC()
	columns = append(columns, "updated_at")
	_, err := tx.NewUpdate().Model(s).Column(columns...).
		Where("tenant_id = ? AND id = ?", s.TenantID, s.ID).
		Where("csat_expect(status = ?, ?)", fromStatus, "survey "+s.ID+" changed under its lock").
		Exec(WithDeferred(ctx))
	if err != nil {
		return fmt.Errorf("update survey: %w", mapErr(err))
	}
	return nil
}

// ExpireSent marks the tenant's sent surveys whose link expired before now as
// expired and returns them.
func ExpireSent(ctx context.Context, idb bun.IDB, tenantID string, now time.Time, limit int) ([]Survey, error) {
	var out []Survey
	err := idb.NewRaw(`
		UPDATE surveys SET status = 'expired', updated_at = ?1
		WHERE tenant_id = ?0 AND (id) IN (
			SELECT id FROM surveys
			WHERE tenant_id = ?0 AND status = 'sent' AND expires_at <= ?1
			ORDER BY expires_at LIMIT ?2
			FOR UPDATE SKIP LOCKED)
		RETURNING *`, tenantID, now, limit).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("expire sent surveys: %w", err)
	}
	return out, nil
}

// DueRef names a survey and when its send is due.
type DueRef struct {
	ID           string    `bun:"id"`
	ScheduledFor time.Time `bun:"scheduled_for"`
}

// DuePending lists the tenant's pending surveys due before the given time,
// earliest first.
func DuePending(ctx context.Context, idb bun.IDB, tenantID string, before time.Time, limit int) ([]DueRef, error) {
	var out []DueRef
	err := idb.NewSelect().Model((*Survey)(nil)).Column("s.id", "s.scheduled_for").
		Apply(byTenant(tenantID)).
		Where("s.status = ?", StatusPending).
		Where("s.scheduled_for <= ?", before).
		Order("s.scheduled_for").Limit(int64(limit)).
		Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("list due surveys: %w", err)
	}
	return out, nil
}

// ListSurveysBefore returns up to limit of the tenant's surveys matching f
// whose id sorts before the given one ("" for the newest), newest first:
// keyset pages that stay fast at any depth.
func ListSurveysBefore(ctx context.Context, idb bun.IDB, tenantID string, f SurveyFilter, before string, limit int) ([]Survey, error) {
	var out []Survey
	q := idb.NewSelect().Model(&out).Apply(byTenant(tenantID)).Apply(f.query)
	if before != "" {
		q = q.Where("s.id < ?", before)
	}
	if err := q.OrderExpr("s.id DESC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list surveys: %w", mapErr(err))
	}
	return out, nil
}

// IntakeState is what an intake decides on, read in one statement: the
// tenant's config, the id of its survey for the conversation ("" when there
// is none) and whether the contact opted out of the tenant's surveys.
type IntakeState struct {
	Config     *Config
	ExistingID string
	OptedOut   bool
}

// GetIntakeState reads the intake state of a conversation and contact,
// and the tenant's webhook targets when ctx waits for them. Prepared
// (intakeState).
func GetIntakeState(ctx context.Context, idb bun.IDB, tenantID, conversationID, email string) (*IntakeState, error) {
	var row struct {
		Config     `bun:",extend"`
		ExistingID *string `bun:"existing_id,scanonly"`
		OptedOut   bool    `bun:"opted_out,scanonly"`
		Targets    []byte  `bun:"webhook_targets,scanonly"`
	}
	err := intakeState.scan(ctx, idb, tenantID, &row, &row.Targets, tenantID, conversationID, strings.ToLower(email))
	if err != nil {
		return nil, err
	}
	st := &IntakeState{Config: &row.Config, OptedOut: row.OptedOut}
	if row.ExistingID != nil {
		st.ExistingID = *row.ExistingID
	}
	return st, nil
}

// intakeState is GetIntakeState's read.
var intakeState = newTargetsRead("csat_intake_state", "text, text, text", "c.tenant_id", func(columns string) string {
	return `SELECT c.*,
		(SELECT s.id FROM surveys AS s WHERE s.tenant_id = c.tenant_id AND s.conversation_id = $2) AS existing_id,
		EXISTS (SELECT 1 FROM csat_unsubscribes AS u WHERE u.tenant_id = c.tenant_id AND u.email = $3) AS opted_out` + columns + `
	FROM csat_configs AS c WHERE c.tenant_id = $1`
})
