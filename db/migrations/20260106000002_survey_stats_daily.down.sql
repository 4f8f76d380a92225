CREATE OR REPLACE FUNCTION survey_stats_add(t text, sent_at timestamptz, agent text, team text, chan text, rating smallint, sign integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO survey_stats_hourly AS h (tenant_id, dim, dim_key, hour, sent, r1, r2, r3, r4, r5)
    SELECT t, d.dim, d.dim_key, date_trunc('hour', sent_at, 'UTC'), sign,
           CASE WHEN rating = 1 THEN sign ELSE 0 END,
           CASE WHEN rating = 2 THEN sign ELSE 0 END,
           CASE WHEN rating = 3 THEN sign ELSE 0 END,
           CASE WHEN rating = 4 THEN sign ELSE 0 END,
           CASE WHEN rating = 5 THEN sign ELSE 0 END
    FROM (VALUES ('all', ''), ('agent', coalesce(agent, '')), ('team', coalesce(team, '')), ('channel', coalesce(chan, ''))) AS d (dim, dim_key)
    ON CONFLICT (tenant_id, dim, dim_key, hour) DO UPDATE SET
        sent = h.sent + excluded.sent,
        r1 = h.r1 + excluded.r1, r2 = h.r2 + excluded.r2, r3 = h.r3 + excluded.r3,
        r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5
$$;
DROP TABLE IF EXISTS survey_stats_daily;
