DROP TRIGGER IF EXISTS surveys_stats ON surveys;
DROP FUNCTION IF EXISTS survey_stats_trigger();
DROP FUNCTION IF EXISTS survey_stats_add(text, timestamptz, text, text, text, smallint, integer);
DROP TABLE IF EXISTS survey_stats_hourly;
