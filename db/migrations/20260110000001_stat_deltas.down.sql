-- Fold what is pending (as each tenant: row-level security), then back to
-- the trigger function of 20260109000003_rollups_plpgsql.
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT DISTINCT tenant_id FROM survey_stat_deltas LOOP
        PERFORM set_config('app.tenant_id', t, true);
        PERFORM survey_stats_fold(t);
    END LOOP;
END $$;
DROP FUNCTION survey_stats_fold(text);
DROP FUNCTION survey_stats_rows(text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz);
DROP FUNCTION survey_stat_unfolded(text);
DROP TABLE survey_stat_deltas;
DROP TABLE survey_stat_folds;
DROP TABLE survey_stats_monthly;

CREATE OR REPLACE FUNCTION survey_rollups_apply(olds surveys[], news surveys[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survey_counts AS c (tenant_id, status, stripe, n)
    SELECT tenant_id, status, stripe, sum(sign) FROM (
        SELECT o.tenant_id, o.status, hashtext(o.id) & 15 AS stripe, -1 AS sign FROM unnest(olds) o
        UNION ALL
        SELECT n.tenant_id, n.status, hashtext(n.id) & 15, 1 FROM unnest(news) n) d
    GROUP BY 1, 2, 3 HAVING sum(sign) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, status, stripe) DO UPDATE SET n = c.n + excluded.n;

    WITH d AS (
        SELECT o.tenant_id, o.sent_at, o.agent_id, o.team_id, o.channel, o.rating, -1 AS sign
        FROM unnest(olds) o WHERE o.sent_at IS NOT NULL
        UNION ALL
        SELECT n.tenant_id, n.sent_at, n.agent_id, n.team_id, n.channel, n.rating, 1
        FROM unnest(news) n WHERE n.sent_at IS NOT NULL),
    e AS (
        SELECT d.tenant_id, k.dim, k.dim_key, d.sent_at, d.sign,
               CASE WHEN d.rating = 1 THEN d.sign ELSE 0 END AS r1,
               CASE WHEN d.rating = 2 THEN d.sign ELSE 0 END AS r2,
               CASE WHEN d.rating = 3 THEN d.sign ELSE 0 END AS r3,
               CASE WHEN d.rating = 4 THEN d.sign ELSE 0 END AS r4,
               CASE WHEN d.rating = 5 THEN d.sign ELSE 0 END AS r5
        FROM d CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', coalesce(d.agent_id, '')),
                                          ('team', coalesce(d.team_id, '')), ('channel', coalesce(d.channel, ''))) AS k (dim, dim_key)),
    hourly AS (
        INSERT INTO survey_stats_hourly AS h (tenant_id, dim, dim_key, hour, sent, r1, r2, r3, r4, r5)
        SELECT tenant_id, dim, dim_key, date_trunc('hour', sent_at, 'UTC'), sum(sign), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
        FROM e GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0 OR sum(r1) <> 0 OR sum(r2) <> 0 OR sum(r3) <> 0 OR sum(r4) <> 0 OR sum(r5) <> 0
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (tenant_id, dim, dim_key, hour) DO UPDATE SET
            sent = h.sent + excluded.sent,
            r1 = h.r1 + excluded.r1, r2 = h.r2 + excluded.r2, r3 = h.r3 + excluded.r3,
            r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5
        RETURNING 1)
    INSERT INTO survey_stats_daily AS h (tenant_id, dim, dim_key, day, sent, r1, r2, r3, r4, r5)
    SELECT tenant_id, dim, dim_key, date_trunc('day', sent_at, 'UTC'), sum(sign), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
    FROM e GROUP BY 1, 2, 3, 4
    HAVING sum(sign) <> 0 OR sum(r1) <> 0 OR sum(r2) <> 0 OR sum(r3) <> 0 OR sum(r4) <> 0 OR sum(r5) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, dim, dim_key, day) DO UPDATE SET
        sent = h.sent + excluded.sent,
        r1 = h.r1 + excluded.r1, r2 = h.r2 + excluded.r2, r3 = h.r3 + excluded.r3,
        r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5;
END
$$;
