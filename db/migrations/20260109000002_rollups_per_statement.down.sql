DROP TRIGGER IF EXISTS surveys_rollups_insert ON surveys;
DROP TRIGGER IF EXISTS surveys_rollups_update ON surveys;
DROP TRIGGER IF EXISTS surveys_rollups_delete ON surveys;
DROP FUNCTION IF EXISTS survey_rollups_insert();
DROP FUNCTION IF EXISTS survey_rollups_update();
DROP FUNCTION IF EXISTS survey_rollups_delete();
DROP FUNCTION IF EXISTS survey_rollups_apply(surveys[], surveys[]);

CREATE TRIGGER surveys_counts_insert AFTER INSERT ON surveys
    FOR EACH ROW EXECUTE FUNCTION survey_counts_trigger();
CREATE TRIGGER surveys_counts_update AFTER UPDATE ON surveys
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION survey_counts_trigger();
CREATE TRIGGER surveys_counts_delete AFTER DELETE ON surveys
    FOR EACH ROW EXECUTE FUNCTION survey_counts_trigger();
CREATE TRIGGER surveys_stats AFTER INSERT OR UPDATE OR DELETE ON surveys
    FOR EACH ROW EXECUTE FUNCTION survey_stats_trigger();
