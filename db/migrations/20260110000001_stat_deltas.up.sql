-- Analytics rollups folded in the background from an append-only log.
--
-- Until now the statement trigger on surveys upserted the hourly and daily
-- rollup rows itself: eight rows (four dimensions x two grains) per rated
-- survey, ~0.6 ms of Postgres CPU, and every rating of the same day queued
-- on the same rows' locks until its transaction committed (a monthly
-- rollup, tried on top, made that queue the month's).
--
-- Now the trigger appends what changed to survey_stat_deltas (one row per
-- survey that left a count, -1, and one per survey that joined one, +1),
-- in the same transaction as the change, and a folder (db.FoldStats, run
-- by every process shortly after it wrote, and by the sweep) moves the
-- deltas into the hourly, daily and monthly rollups in one statement.
-- Analytics read a rollup plus the deltas not folded yet (db/stats.go), in
-- one statement and so from one snapshot: always exact, whether or not a
-- folder has run. survey_counts (the list's total) stays in the trigger:
-- one small striped upsert.

CREATE TABLE survey_stat_deltas (
    tenant_id text        NOT NULL,
    seq       bigint      GENERATED ALWAYS AS IDENTITY,
    sent_at   timestamptz NOT NULL,
    agent_id  text        NOT NULL, -- '' for none, as the rollups' dim_key
    team_id   text        NOT NULL,
    channel   text        NOT NULL,
    rating    smallint,
    sign      smallint    NOT NULL CHECK (sign IN (-1, 1)),
    PRIMARY KEY (tenant_id, seq)
);
SELECT csat_protect_tenant_table('survey_stat_deltas');

-- A developer database may hold a survey_stats_monthly from a reverted
-- migration (20260109000004): rebuild it from the daily rollup.
DROP TABLE IF EXISTS survey_stats_monthly;
CREATE TABLE survey_stats_monthly (
    tenant_id text        NOT NULL,
    dim       text        NOT NULL CHECK (dim IN ('all', 'agent', 'team', 'channel')),
    dim_key   text        NOT NULL,
    month     timestamptz NOT NULL, -- the UTC midnight that starts the month
    sent      integer     NOT NULL DEFAULT 0,
    r1        integer     NOT NULL DEFAULT 0,
    r2        integer     NOT NULL DEFAULT 0,
    r3        integer     NOT NULL DEFAULT 0,
    r4        integer     NOT NULL DEFAULT 0,
    r5        integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, dim, dim_key, month)
);
CREATE INDEX survey_stats_monthly_breakdown ON survey_stats_monthly (tenant_id, dim, month);
SELECT csat_protect_tenant_table('survey_stats_monthly');

INSERT INTO survey_stats_monthly (tenant_id, dim, dim_key, month, sent, r1, r2, r3, r4, r5)
SELECT tenant_id, dim, dim_key, date_trunc('month', day, 'UTC'), sum(sent), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
FROM survey_stats_daily GROUP BY 1, 2, 3, 4;

-- What a statement changed, as deltas: the surveys (projected on what the
-- rollups count) that left, -1, and those that came, +1. A change that
-- moves no count (a status the rollups do not look at, a token, feedback)
-- cancels out and writes nothing.
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

    INSERT INTO survey_stat_deltas (tenant_id, sent_at, agent_id, team_id, channel, rating, sign)
    SELECT l.*, -1 FROM (
        SELECT o.tenant_id, o.sent_at, coalesce(o.agent_id, ''), coalesce(o.team_id, ''), coalesce(o.channel, ''), o.rating
        FROM unnest(olds) o WHERE o.sent_at IS NOT NULL
        EXCEPT ALL
        SELECT n.tenant_id, n.sent_at, coalesce(n.agent_id, ''), coalesce(n.team_id, ''), coalesce(n.channel, ''), n.rating
        FROM unnest(news) n WHERE n.sent_at IS NOT NULL) l
    UNION ALL
    SELECT c.*, 1 FROM (
        SELECT n.tenant_id, n.sent_at, coalesce(n.agent_id, ''), coalesce(n.team_id, ''), coalesce(n.channel, ''), n.rating
        FROM unnest(news) n WHERE n.sent_at IS NOT NULL
        EXCEPT ALL
        SELECT o.tenant_id, o.sent_at, coalesce(o.agent_id, ''), coalesce(o.team_id, ''), coalesce(o.channel, ''), o.rating
        FROM unnest(olds) o WHERE o.sent_at IS NOT NULL) c;
END
$$;

-- survey_stats_fold moves up to max_rows of the tenant's deltas (oldest
-- first) into the rollups and returns how many it moved: 0 when there were
-- none, or when another folder holds the tenant (one folder per tenant at a
-- time, so two never upsert the same rows; the other's fold covers these
-- deltas or the next call does). Deleting the deltas and adding them to the
-- rollups is one statement: a reader sees them in one place or the other.
-- Runs as the caller, under row-level security: the tenant must be bound.
CREATE FUNCTION survey_stats_fold(tenant text, max_rows int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    folded int;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('survey_stats_fold'), hashtext(tenant)) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM survey_stat_deltas d
        WHERE d.tenant_id = tenant AND d.seq IN (
            SELECT x.seq FROM survey_stat_deltas x WHERE x.tenant_id = tenant ORDER BY x.seq LIMIT max_rows)
        RETURNING d.*),
    e AS (
        SELECT g.tenant_id, k.dim, k.dim_key, g.sent_at, g.sign::int AS sign,
               CASE WHEN g.rating = 1 THEN g.sign ELSE 0 END AS r1,
               CASE WHEN g.rating = 2 THEN g.sign ELSE 0 END AS r2,
               CASE WHEN g.rating = 3 THEN g.sign ELSE 0 END AS r3,
               CASE WHEN g.rating = 4 THEN g.sign ELSE 0 END AS r4,
               CASE WHEN g.rating = 5 THEN g.sign ELSE 0 END AS r5
        FROM gone g CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', g.agent_id),
                                               ('team', g.team_id), ('channel', g.channel)) AS k (dim, dim_key)),
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
        RETURNING 1),
    daily AS (
        INSERT INTO survey_stats_daily AS h (tenant_id, dim, dim_key, day, sent, r1, r2, r3, r4, r5)
        SELECT tenant_id, dim, dim_key, date_trunc('day', sent_at, 'UTC'), sum(sign), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
        FROM e GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0 OR sum(r1) <> 0 OR sum(r2) <> 0 OR sum(r3) <> 0 OR sum(r4) <> 0 OR sum(r5) <> 0
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (tenant_id, dim, dim_key, day) DO UPDATE SET
            sent = h.sent + excluded.sent,
            r1 = h.r1 + excluded.r1, r2 = h.r2 + excluded.r2, r3 = h.r3 + excluded.r3,
            r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5
        RETURNING 1),
    monthly AS (
        INSERT INTO survey_stats_monthly AS h (tenant_id, dim, dim_key, month, sent, r1, r2, r3, r4, r5)
        SELECT tenant_id, dim, dim_key, date_trunc('month', sent_at, 'UTC'), sum(sign), sum(r1), sum(r2), sum(r3), sum(r4), sum(r5)
        FROM e GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0 OR sum(r1) <> 0 OR sum(r2) <> 0 OR sum(r3) <> 0 OR sum(r4) <> 0 OR sum(r5) <> 0
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (tenant_id, dim, dim_key, month) DO UPDATE SET
            sent = h.sent + excluded.sent,
            r1 = h.r1 + excluded.r1, r2 = h.r2 + excluded.r2, r3 = h.r3 + excluded.r3,
            r4 = h.r4 + excluded.r4, r5 = h.r5 + excluded.r5
        RETURNING 1)
    SELECT count(*) INTO folded FROM gone;
    RETURN folded;
END
$$;
