DROP TRIGGER surveys_deltas_insert ON surveys;
DROP TRIGGER surveys_deltas_update ON surveys;
DROP FUNCTION survey_delta_row();

CREATE TRIGGER surveys_rollups_insert AFTER INSERT ON surveys
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION survey_rollups_insert();
CREATE TRIGGER surveys_rollups_update AFTER UPDATE ON surveys
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION survey_rollups_update();
