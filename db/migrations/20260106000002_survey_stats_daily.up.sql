-- Daily analytics rollup next to the hourly one: a year of a big tenant is
-- 8,760 hourly rows per dimension key but 365 daily ones, so periods made
-- of whole UTC days (every UTC query, e.g. 30 or 365 days) read 24x fewer
-- rows and stay flat as the tenant grows. Periods in other timezones keep
-- reading the hourly rows. Same columns and meaning as survey_stats_hourly;
-- day is the UTC midnight that starts the day.
CREATE TABLE survey_stats_daily (
    tenant_id text        NOT NULL,
    dim       text        NOT NULL CHECK (dim IN ('all', 'agent', 'team', 'channel')),
    dim_key   text        NOT NULL,
    day       timestamptz NOT NULL,
    sent      integer     NOT NULL DEFAULT 0,
    r1        integer     NOT NULL DEFAULT 0,
    r2        integer     NOT NULL DEFAULT 0,
    r3        integer     NOT NULL DEFAULT 0,
    r4        integer     NOT NULL DEFAULT 0,
    r5        integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, dim, dim_key, day)
);
CREATE INDEX survey_stats_daily_breakdown ON survey_stats_daily (tenant_id, dim, day);

-- The trigger's helper now counts each change in both rollups, in the same
-- statement's transaction.
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
        r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5;
    INSERT INTO survey_stats_daily AS h (tenant_id, dim, dim_key, day, sent, r1, r2, r3, r4, r5)
    SELECT t, d.dim, d.dim_key, date_trunc('day', sent_at, 'UTC'), sign,
           CASE WHEN rating = 1 THEN sign ELSE 0 END,
           CASE WHEN rating = 2 THEN sign ELSE 0 END,
           CASE WHEN rating = 3 THEN sign ELSE 0 END,
           CASE WHEN rating = 4 THEN sign ELSE 0 END,
           CASE WHEN rating = 5 THEN sign ELSE 0 END
    FROM (VALUES ('all', ''), ('agent', coalesce(agent, '')), ('team', coalesce(team, '')), ('channel', coalesce(chan, ''))) AS d (dim, dim_key)
    ON CONFLICT (tenant_id, dim, dim_key, day) DO UPDATE SET
        sent = h.sent + excluded.sent,
        r1 = h.r1 + excluded.r1, r2 = h.r2 + excluded.r2, r3 = h.r3 + excluded.r3,
        r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5
$$;

-- Surveys counted before this migration.
INSERT INTO survey_stats_daily (tenant_id, dim, dim_key, day, sent, r1, r2, r3, r4, r5)
SELECT tenant_id, dim, dim_key, date_trunc('day', hour, 'UTC'), sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
FROM survey_stats_hourly GROUP BY 1, 2, 3, 4;
