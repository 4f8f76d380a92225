-- The click log again, holding each survey's last click of each rating
-- (the earlier clicks of a rating were not kept).
CREATE TABLE survey_clicks (
    tenant_id  text NOT NULL,
    survey_id  text NOT NULL,
    clicked_at timestamptz NOT NULL,
    rating     smallint NOT NULL,
    PRIMARY KEY (tenant_id, survey_id, clicked_at, rating),
    FOREIGN KEY (tenant_id, survey_id) REFERENCES surveys (tenant_id, id) ON DELETE CASCADE
);
SELECT csat_protect_tenant_table('survey_clicks');

INSERT INTO survey_clicks (tenant_id, survey_id, clicked_at, rating)
SELECT s.tenant_id, s.id, c.at, c.rating
FROM surveys AS s, unnest(s.last_clicks) WITH ORDINALITY AS c (at, rating)
WHERE s.last_clicks IS NOT NULL AND c.at > 'epoch';

ALTER TABLE surveys DROP COLUMN last_clicks;
