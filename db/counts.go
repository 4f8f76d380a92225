package db

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// countable reports whether survey_counts answers the filter's total: no
// filter, or statuses only. Any other filter counts the matching rows.
func (f SurveyFilter) countable() bool {
	return f.SentFrom == nil && f.SentTo == nil && len(f.Ratings) == 0 && f.AgentID == "" &&
		f.TeamID == "" && f.Channel == "" && f.HasFeedback == nil && f.Search == ""
}

// empty reports whether f filters nothing.
func (f SurveyFilter) empty() bool { return len(f.Statuses) == 0 && f.countable() }

// CountSurveys returns how many of the tenant's surveys match f: from the
// per-status counters and the changes not folded into them yet (appended by
// a trigger in the same transaction as every change) when f filters by
// status at most, else by counting rows.
func CountSurveys(ctx context.Context, idb bun.IDB, tenantID string, f SurveyFilter) (int, error) {
	if !f.countable() {
		n, err := idb.NewSelect().Model((*Survey)(nil)).Apply(byTenant(tenantID)).Apply(f.query).Count(ctx)
		if err != nil {
			return 0, fmt.Errorf("count surveys: %w", mapErr(err))
		}
		return int(n), nil
	}
	var n int
	if err := countersQuery(idb, tenantID, f).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("count surveys: %w", mapErr(err))
	}
	return n, nil
}

// countersQuery sums the counters of the surveys matching a countable
// filter, and the changes not folded into them yet, as "total".
func countersQuery(idb bun.IDB, tenantID string, f SurveyFilter) *bun.SelectQuery {
	kept := idb.NewSelect().TableExpr("survey_counts").Column("n").Where("tenant_id = ?", tenantID)
	unfolded := idb.NewSelect().TableExpr("("+unfoldedDeltas("?")+") AS d", tenantID, tenantID, tenantID).ColumnExpr("d.sign::bigint")
	if len(f.Statuses) > 0 {
		kept = kept.Where("status IN (?)", bun.List(f.Statuses))
		unfolded = unfolded.Where("d.status IN (?)", bun.List(f.Statuses))
	}
	return idb.NewSelect().TableExpr("(?) AS c", kept.UnionAll(unfolded)).ColumnExpr("coalesce(sum(c.n), 0) AS total")
}

// RecountSurveys rebuilds survey_counts from the surveys table, for after
// a bulk load that bypassed the trigger (the benchmark's COPY); run it with
// RebuildSurveyStats, which clears the deltas both rebuilds count.
func RecountSurveys(ctx context.Context, idb bun.IDB) error {
	_, err := idb.ExecContext(ctx, `
		DELETE FROM survey_counts;
		INSERT INTO survey_counts (tenant_id, status, stripe, n)
		SELECT tenant_id, status, hashtext(id) & 15, count(*) FROM surveys GROUP BY 1, 2, 3`)
	if err != nil {
		return fmt.Errorf("recount surveys: %w", err)
	}
	return nil
}

// RebuildSurveyStats recomputes the hourly, daily and monthly analytics
// rollups from the surveys table (the same INSERT..SELECT as its migration's
// backfill), for after a bulk load that bypassed the trigger. Deltas are
// counted in the rebuild, so they go, and with them the fold watermarks.
func RebuildSurveyStats(ctx context.Context, idb bun.IDB) error {
	_, err := idb.ExecContext(ctx, `
		DELETE FROM survey_stat_deltas;
		DELETE FROM survey_stat_folds;
		DELETE FROM survey_stats_hourly;
		INSERT INTO survey_stats_hourly (tenant_id, dim, dim_key, hour, sent, r1, r2, r3, r4, r5)
		SELECT s.tenant_id, d.dim, d.dim_key, date_trunc('hour', s.sent_at, 'UTC'), count(*),
		       count(*) FILTER (WHERE s.rating = 1), count(*) FILTER (WHERE s.rating = 2),
		       count(*) FILTER (WHERE s.rating = 3), count(*) FILTER (WHERE s.rating = 4),
		       count(*) FILTER (WHERE s.rating = 5)
		FROM surveys s
		CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', coalesce(s.agent_id, '')),
		                           ('team', coalesce(s.team_id, '')), ('channel', coalesce(s.channel, ''))) AS d (dim, dim_key)
		WHERE s.sent_at IS NOT NULL
		GROUP BY 1, 2, 3, 4;
		DELETE FROM survey_stats_daily;
		INSERT INTO survey_stats_daily (tenant_id, dim, dim_key, day, sent, r1, r2, r3, r4, r5)
		SELECT tenant_id, dim, dim_key, date_trunc('day', hour, 'UTC'), sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
		FROM survey_stats_hourly GROUP BY 1, 2, 3, 4;
		DELETE FROM survey_stats_monthly;
		INSERT INTO survey_stats_monthly (tenant_id, dim, dim_key, month, sent, r1, r2, r3, r4, r5)
		SELECT tenant_id, dim, dim_key, date_trunc('month', day, 'UTC'), sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
		FROM survey_stats_daily GROUP BY 1, 2, 3, 4`)
	if err != nil {
		return fmt.Errorf("rebuild survey stats: %w", err)
	}
	return nil
}
