ALTER TABLE survey_counts RESET (fillfactor);
