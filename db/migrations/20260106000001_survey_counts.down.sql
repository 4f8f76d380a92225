DROP TRIGGER IF EXISTS surveys_counts_insert ON surveys;
DROP TRIGGER IF EXISTS surveys_counts_update ON surveys;
DROP TRIGGER IF EXISTS surveys_counts_delete ON surveys;
DROP FUNCTION IF EXISTS survey_counts_trigger();
DROP TABLE IF EXISTS survey_counts;
