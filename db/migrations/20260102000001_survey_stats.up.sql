-- Hourly analytics rollup. Every survey that was sent counts once in the
-- hour (UTC) of its sent_at, four times over: in the tenant total (dim
-- 'all', key '') and under its agent, team and channel (key '' when the
-- survey has none). r1..r5 count the sent surveys holding each rating.
--
-- A trigger on surveys keeps it in step inside the transaction of every
-- change (intake, send, rating, re-rating, scanner clear, resend, expiry,
-- delete), so no code path can forget it. No foreign key to tenants: a
-- cascading tenant delete fires the trigger while the tenant row is gone.
CREATE TABLE survey_stats_hourly (
    tenant_id text        NOT NULL,
    dim       text        NOT NULL CHECK (dim IN ('all', 'agent', 'team', 'channel')),
    dim_key   text        NOT NULL,
    hour      timestamptz NOT NULL,
    sent      integer     NOT NULL DEFAULT 0,
    r1        integer     NOT NULL DEFAULT 0,
    r2        integer     NOT NULL DEFAULT 0,
    r3        integer     NOT NULL DEFAULT 0,
    r4        integer     NOT NULL DEFAULT 0,
    r5        integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, dim, dim_key, hour)
);
-- Breakdowns read every key of a dimension over an hour range.
CREATE INDEX survey_stats_hourly_breakdown ON survey_stats_hourly (tenant_id, dim, hour);

-- survey_stats_add counts one survey (sign 1) or takes it back (sign -1).
CREATE FUNCTION survey_stats_add(t text, sent_at timestamptz, agent text, team text, chan text, rating smallint, sign integer)
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

CREATE FUNCTION survey_stats_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.tenant_id = NEW.tenant_id
       AND OLD.sent_at IS NOT DISTINCT FROM NEW.sent_at
       AND OLD.rating IS NOT DISTINCT FROM NEW.rating
       AND OLD.agent_id IS NOT DISTINCT FROM NEW.agent_id
       AND OLD.team_id IS NOT DISTINCT FROM NEW.team_id
       AND OLD.channel IS NOT DISTINCT FROM NEW.channel THEN
        RETURN NULL; -- status, feedback, token...: nothing counted changed
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.sent_at IS NOT NULL THEN
        PERFORM survey_stats_add(OLD.tenant_id, OLD.sent_at, OLD.agent_id, OLD.team_id, OLD.channel, OLD.rating, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.sent_at IS NOT NULL THEN
        PERFORM survey_stats_add(NEW.tenant_id, NEW.sent_at, NEW.agent_id, NEW.team_id, NEW.channel, NEW.rating, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER surveys_stats AFTER INSERT OR UPDATE OR DELETE ON surveys
    FOR EACH ROW EXECUTE FUNCTION survey_stats_trigger();

-- Surveys that existed before this migration.
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
