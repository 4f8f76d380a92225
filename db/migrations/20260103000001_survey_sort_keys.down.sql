DROP INDEX IF EXISTS surveys_sort_rating;
DROP INDEX IF EXISTS surveys_sort_responded;
DROP INDEX IF EXISTS surveys_sort_sent;
