-- A long range that starts or ends inside a month reads that whole month
-- and takes off the days outside the range, when those are fewer than the
-- days inside it. A year from the 2nd of a month read ~30 daily rows per
-- key at its start (a year's breakdown by 60 agents: 2,580 rows, 1.6 ms of
-- Postgres); with the month less its 1st, 2 rows per key (900 rows). The
-- months and the days are folded by the same statement, so a month always
-- equals the sum of its days and the difference is exact.
--
-- m0 and m1 are now the month starts the caller chose: m0 at or before
-- from_at (the days [m0, from_at) are taken off) or after it (the days
-- [from_at, m0) are added), and likewise m1 against to_at. Rows taken off
-- carry negated counts and their own day as "at", which lies outside the
-- range: callers use months only for a single bucket, which ignores "at".
-- Otherwise as in 20260111000001_stats_covering_indexes.
CREATE OR REPLACE FUNCTION survey_stats_rows(tenant text, dimension text, dim_value text, grain text,
                                  from_at timestamptz, to_at timestamptz, m0 timestamptz, m1 timestamptz)
RETURNS TABLE (at timestamptz, dim_key text, sent int, r1 int, r2 int, r3 int, r4 int, r5 int)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    s0 int := CASE WHEN m0 < from_at THEN -1 ELSE 1 END; -- the start edge's days: taken off or added
    s1 int := CASE WHEN m1 > to_at THEN -1 ELSE 1 END;   -- the end edge's
BEGIN
    IF grain = 'hour' THEN
        IF dim_value IS NULL THEN
            RETURN QUERY SELECT r.hour, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_hourly r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.hour >= from_at AND r.hour < to_at;
        ELSE
            RETURN QUERY SELECT r.hour, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_hourly r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value AND r.hour >= from_at AND r.hour < to_at;
        END IF;
    ELSIF m0 IS NULL THEN
        IF dim_value IS NULL THEN
            RETURN QUERY SELECT r.day, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.day >= from_at AND r.day < to_at;
        ELSE
            RETURN QUERY SELECT r.day, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value AND r.day >= from_at AND r.day < to_at;
        END IF;
    ELSE
        IF dim_value IS NULL THEN
            RETURN QUERY SELECT r.month, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_monthly r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.month >= m0 AND r.month < m1;
            RETURN QUERY SELECT r.day, r.dim_key, s0 * r.sent, s0 * r.r1, s0 * r.r2, s0 * r.r3, s0 * r.r4, s0 * r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.day >= least(from_at, m0) AND r.day < greatest(from_at, m0);
            RETURN QUERY SELECT r.day, r.dim_key, s1 * r.sent, s1 * r.r1, s1 * r.r2, s1 * r.r3, s1 * r.r4, s1 * r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.day >= least(m1, to_at) AND r.day < greatest(m1, to_at);
        ELSE
            RETURN QUERY SELECT r.month, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_monthly r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value AND r.month >= m0 AND r.month < m1;
            RETURN QUERY SELECT r.day, r.dim_key, s0 * r.sent, s0 * r.r1, s0 * r.r2, s0 * r.r3, s0 * r.r4, s0 * r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value
                  AND r.day >= least(from_at, m0) AND r.day < greatest(from_at, m0);
            RETURN QUERY SELECT r.day, r.dim_key, s1 * r.sent, s1 * r.r1, s1 * r.r2, s1 * r.r3, s1 * r.r4, s1 * r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value
                  AND r.day >= least(m1, to_at) AND r.day < greatest(m1, to_at);
        END IF;
    END IF;
    RETURN QUERY SELECT x.sent_at, x.k, x.sign::int,
               CASE WHEN x.rating = 1 THEN x.sign::int ELSE 0 END, CASE WHEN x.rating = 2 THEN x.sign::int ELSE 0 END,
               CASE WHEN x.rating = 3 THEN x.sign::int ELSE 0 END, CASE WHEN x.rating = 4 THEN x.sign::int ELSE 0 END,
               CASE WHEN x.rating = 5 THEN x.sign::int ELSE 0 END
        FROM (SELECT d.sent_at, d.sign, d.rating,
                     CASE dimension WHEN 'agent' THEN d.agent_id WHEN 'team' THEN d.team_id
                                    WHEN 'channel' THEN d.channel ELSE '' END AS k
              FROM survey_stat_unfolded(tenant) d WHERE d.sent_at >= from_at AND d.sent_at < to_at) x
        WHERE dim_value IS NULL OR x.k = dim_value;
END
$$;
