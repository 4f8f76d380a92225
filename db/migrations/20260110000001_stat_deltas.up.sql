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
-- by every process shortly after it wrote, and by the sweep) adds the
-- deltas to the hourly, daily and monthly rollups in one statement.
--
-- Which deltas are folded is told by a snapshot, not by deleting them: a
-- fold adds every delta its statement sees that the tenant's previous fold
-- did not, and stores its own snapshot as the tenant's watermark
-- (survey_stat_folds). A reader adds to the rollups the deltas its
-- snapshot sees and the watermark does not; rollups and watermark commit
-- together, so every read is exact, folded or not. Deltas are keyed by the
-- writing transaction's id (xid8), so both find their unfolded deltas by
-- an index range from the watermark's xmin: the deltas folded long ago,
-- deleted by later folds, lie below it and are never walked, however long
-- VACUUM takes to remove them. (Deleting folded deltas and reading "what
-- is left" would make every read walk the dead index entries of the last
-- minute's deltas until autovacuum came: 2-14 ms per read after 80,000.)
--
-- survey_counts (the list's total) is folded from the same deltas: a
-- write's trigger upserts nothing, it appends. (Its striped rows, upserted
-- by the trigger, queued concurrent ratings of a tenant on 16 rows' locks
-- until commit.) Folds add to stripe 0; the stripes stay summed by readers.

CREATE TABLE survey_stat_deltas (
    tenant_id text        NOT NULL,
    xid       xid8        NOT NULL DEFAULT pg_current_xact_id(), -- the writing transaction
    seq       bigint      GENERATED ALWAYS AS IDENTITY,
    status    text        NOT NULL,
    sent_at   timestamptz, -- NULL: never sent (in survey_counts only)
    agent_id  text        NOT NULL, -- '' for none, as the rollups' dim_key
    team_id   text        NOT NULL,
    channel   text        NOT NULL,
    rating    smallint,
    sign      smallint    NOT NULL CHECK (sign IN (-1, 1)),
    PRIMARY KEY (tenant_id, xid, seq)
);
SELECT csat_protect_tenant_table('survey_stat_deltas');

-- A tenant's watermark: the snapshot of its last fold. No row: nothing
-- folded yet.
CREATE TABLE survey_stat_folds (
    tenant_id text        NOT NULL PRIMARY KEY,
    snap      pg_snapshot NOT NULL,
    folded_at timestamptz NOT NULL DEFAULT now()
);
SELECT csat_protect_tenant_table('survey_stat_folds');

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
-- counters and rollups count) that left, -1, and those that came, +1. A
-- change that moves no count (a token, feedback, a handoff) cancels out and
-- writes nothing.
CREATE OR REPLACE FUNCTION survey_rollups_apply(olds surveys[], news surveys[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO survey_stat_deltas (tenant_id, status, sent_at, agent_id, team_id, channel, rating, sign)
    SELECT l.*, -1 FROM (
        SELECT o.tenant_id, o.status, o.sent_at, coalesce(o.agent_id, ''), coalesce(o.team_id, ''), coalesce(o.channel, ''), o.rating
        FROM unnest(olds) o
        EXCEPT ALL
        SELECT n.tenant_id, n.status, n.sent_at, coalesce(n.agent_id, ''), coalesce(n.team_id, ''), coalesce(n.channel, ''), n.rating
        FROM unnest(news) n) l
    UNION ALL
    SELECT c.*, 1 FROM (
        SELECT n.tenant_id, n.status, n.sent_at, coalesce(n.agent_id, ''), coalesce(n.team_id, ''), coalesce(n.channel, ''), n.rating
        FROM unnest(news) n
        EXCEPT ALL
        SELECT o.tenant_id, o.status, o.sent_at, coalesce(o.agent_id, ''), coalesce(o.team_id, ''), coalesce(o.channel, ''), o.rating
        FROM unnest(olds) o) c;
END
$$;

-- survey_stat_unfolded returns the tenant's deltas the caller's snapshot
-- sees and the tenant's last fold did not, by the index range from the
-- watermark's xmin up. In PL/pgSQL its plan is cached per session (a
-- reader plans only a function scan); STABLE, it reads with the calling
-- statement's snapshot.
CREATE FUNCTION survey_stat_unfolded(tenant text) RETURNS SETOF survey_stat_deltas
LANGUAGE plpgsql STABLE ROWS 20 AS $$
DECLARE
    w pg_snapshot := (SELECT f.snap FROM survey_stat_folds f WHERE f.tenant_id = tenant);
BEGIN
    IF w IS NULL THEN
        RETURN QUERY SELECT d.* FROM survey_stat_deltas d WHERE d.tenant_id = tenant;
    ELSE
        RETURN QUERY SELECT d.* FROM survey_stat_deltas d
        WHERE d.tenant_id = tenant AND d.xid >= pg_snapshot_xmin(w) AND NOT pg_visible_in_snapshot(d.xid, w);
    END IF;
END
$$;

-- survey_stats_rows returns one dimension's rows (only dim_value's, unless
-- NULL) counting the surveys sent in [from_at, to_at): from the hourly
-- rollup when grain is 'hour', else from the daily one, or, when the whole
-- UTC months [m0, m1) lie inside, from the monthly rollup for those and the
-- daily one for the days at either end; and then the deltas not folded yet.
-- Its statements' plans are cached per session: a reader plans one
-- function scan instead of a union of four tables, each with its
-- row-level-security policy (that planning cost more than the reading).
-- One static statement per case, so each gets a plan of its own (a
-- "key IS NULL OR" condition would share one that uses no key index).
CREATE FUNCTION survey_stats_rows(tenant text, dimension text, dim_value text, grain text,
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
                WHERE r.tenant_id = tenant AND r.dim = dimension
                  AND ((r.day >= from_at AND r.day < m0) OR (r.day >= m1 AND r.day < to_at));
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

-- survey_stats_fold adds to the counters and rollups the tenant's deltas
-- this statement sees and its last fold did not (survey_stat_unfolded),
-- makes this statement's snapshot the tenant's watermark (when there were
-- any), deletes the deltas below the snapshot's xmin (all folded by now:
-- every transaction that old has ended, and its deltas were seen by this
-- fold or an earlier one), and returns how many deltas it added: 0 when
-- there were none, or when another folder holds the tenant (one folder per
-- tenant at a time, so two never fold the same delta; the other one's fold
-- covers these, or the next one does). Runs as the caller, under row-level
-- security: the tenant must be bound. Each statement must see the previous
-- fold's commit, hence READ COMMITTED. The three rollups' upserts differ
-- only in grain; SQL has no way to share them that keeps one statement.
CREATE FUNCTION survey_stats_fold(tenant text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    folded int;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'survey_stats_fold needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('survey_stats_fold'), hashtext(tenant)) THEN
        RETURN 0;
    END IF;
    WITH new AS (
        SELECT * FROM survey_stat_unfolded(tenant)),
    counts AS (
        INSERT INTO survey_counts AS c (tenant_id, status, stripe, n)
        SELECT tenant_id, status, 0, sum(sign) FROM new
        GROUP BY 1, 2 HAVING sum(sign) <> 0
        ORDER BY 1, 2
        ON CONFLICT (tenant_id, status, stripe) DO UPDATE SET n = c.n + excluded.n
        RETURNING 1),
    e AS (
        SELECT g.tenant_id, k.dim, k.dim_key, g.sent_at, g.sign::int AS sign,
               CASE WHEN g.rating = 1 THEN g.sign ELSE 0 END AS r1,
               CASE WHEN g.rating = 2 THEN g.sign ELSE 0 END AS r2,
               CASE WHEN g.rating = 3 THEN g.sign ELSE 0 END AS r3,
               CASE WHEN g.rating = 4 THEN g.sign ELSE 0 END AS r4,
               CASE WHEN g.rating = 5 THEN g.sign ELSE 0 END AS r5
        FROM new g CROSS JOIN LATERAL (VALUES ('all', ''), ('agent', g.agent_id),
                                              ('team', g.team_id), ('channel', g.channel)) AS k (dim, dim_key)
        WHERE g.sent_at IS NOT NULL),
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
        RETURNING 1),
    mark AS (
        INSERT INTO survey_stat_folds AS f (tenant_id, snap)
        SELECT tenant, pg_current_snapshot() WHERE EXISTS (SELECT FROM new)
        ON CONFLICT (tenant_id) DO UPDATE SET snap = excluded.snap, folded_at = excluded.folded_at
        RETURNING 1),
    old AS (
        DELETE FROM survey_stat_deltas d
        WHERE d.tenant_id = tenant AND d.xid < pg_snapshot_xmin(pg_current_snapshot())
        RETURNING 1)
    SELECT count(*) INTO folded FROM new;
    RETURN folded;
END
$$;
