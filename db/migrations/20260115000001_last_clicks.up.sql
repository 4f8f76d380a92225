-- The scanner rule (survey.ScannerLimit different ratings within
-- survey.ScannerWin) needs, per survey, when each rating was last clicked:
-- the different ratings clicked since a moment are those whose last click
-- is at or after it. So the survey row keeps five times (rating 1 first;
-- 'epoch' for a rating never clicked; NULL before the first click) instead
-- of a log of every click. A one-click rating then locks and updates one
-- row: the log cost each click an insert into a second table (its key and
-- foreign key checked) and a count of that table in the locked read, about
-- a third of a one-click's Postgres time. The row lock also orders
-- concurrent clicks of a survey: the locked read returns the row as the
-- previous click left it.
--
-- survey_clicks stays, no longer written by this release: during a rolling
-- deploy the previous release's processes still write and count it. A
-- later migration drops it.

-- Row-level security must not hide rows from this copy: with it off, a
-- migrating role it would filter (a non-superuser owner under FORCE) fails
-- here instead of copying nothing.
SET row_security = off;

ALTER TABLE surveys ADD COLUMN last_clicks timestamptz[];

-- The clicks of the last day (the rule reads 30 s; the rest is margin for
-- clocks and a slow deploy). Older history stays in survey_clicks.
UPDATE surveys AS s SET last_clicks = c.last
FROM (
    SELECT tenant_id, survey_id, ARRAY[
        coalesce(max(clicked_at) FILTER (WHERE rating = 1), 'epoch'),
        coalesce(max(clicked_at) FILTER (WHERE rating = 2), 'epoch'),
        coalesce(max(clicked_at) FILTER (WHERE rating = 3), 'epoch'),
        coalesce(max(clicked_at) FILTER (WHERE rating = 4), 'epoch'),
        coalesce(max(clicked_at) FILTER (WHERE rating = 5), 'epoch')]::timestamptz[] AS last
    FROM survey_clicks WHERE clicked_at > now() - interval '1 day'
    GROUP BY tenant_id, survey_id) AS c
WHERE s.tenant_id = c.tenant_id AND s.id = c.survey_id;

RESET row_security;
