ALTER TABLE survey_stats_hourly RESET (fillfactor);
ALTER TABLE survey_stats_daily RESET (fillfactor);
ALTER TABLE survey_stats_monthly RESET (fillfactor);
ALTER TABLE survey_counts RESET (fillfactor);
