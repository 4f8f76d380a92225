-- The click log again: the clicks this release kept on the survey rows
-- (each survey's last click of each rating) go back into it.
SET row_security = off;

INSERT INTO survey_clicks (tenant_id, survey_id, clicked_at, rating)
SELECT s.tenant_id, s.id, c.at, c.rating
FROM surveys AS s, unnest(s.last_clicks) WITH ORDINALITY AS c (at, rating)
WHERE s.last_clicks IS NOT NULL AND c.at > 'epoch'
ON CONFLICT DO NOTHING;

ALTER TABLE surveys DROP COLUMN last_clicks;

RESET row_security;
