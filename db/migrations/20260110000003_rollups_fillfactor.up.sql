-- Room on the rollups' pages for the fold's updates. A fold adds each new
-- delta to a row per dimension and grain (4 x 3 rows per survey change),
-- and a page filled to the brim forces every such update to write the row
-- elsewhere and insert into both of its table's indexes. With 30 % of each
-- page kept free the updates stay on their page (HOT: heap-only tuples, no
-- index writes): a fold of 1,200 deltas took 60-74 ms instead of 80-100 ms
-- on freshly packed tables and 110-134 ms on the bloated ones a day of
-- updates leaves (20,000 surveys, 2 cores). The counters are a few rows
-- updated by every fold: half of their pages free.
-- Rows already stored keep their pages until autovacuum frees room on
-- them (or VACUUM FULL rewrites the table); new rows get the room at once.
ALTER TABLE survey_stats_hourly SET (fillfactor = 70);
ALTER TABLE survey_stats_daily SET (fillfactor = 70);
ALTER TABLE survey_stats_monthly SET (fillfactor = 70);
ALTER TABLE survey_counts SET (fillfactor = 50);
