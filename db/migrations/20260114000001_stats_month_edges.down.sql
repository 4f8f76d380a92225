-- As in 20260111000001_stats_covering_indexes: months only inside the range.
CREATE OR REPLACE FUNCTION survey_stats_rows(tenant text, dimension text, dim_value text, grain text,
                                  from_at timestamptz, to_at timestamptz, m0 timestamptz, m1 timestamptz)
RETURNS TABLE (at timestamptz, dim_key text, sent int, r1 int, r2 int, r3 int, r4 int, r5 int)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
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
            RETURN QUERY SELECT r.day, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.day >= from_at AND r.day < m0;
            RETURN QUERY SELECT r.day, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.day >= m1 AND r.day < to_at;
        ELSE
            RETURN QUERY SELECT r.month, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_monthly r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value AND r.month >= m0 AND r.month < m1;
            RETURN QUERY SELECT r.day, r.dim_key, r.sent, r.r1, r.r2, r.r3, r.r4, r.r5 FROM survey_stats_daily r
                WHERE r.tenant_id = tenant AND r.dim = dimension AND r.dim_key = dim_value
                  AND ((r.day >= from_at AND r.day < m0) OR (r.day >= m1 AND r.day < to_at));
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
