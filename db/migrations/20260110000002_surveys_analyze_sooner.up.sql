-- Statistics on surveys kept fresher. The planner's estimates for a tenant
-- come from the table's statistics; a tenant that was not in them (new, or
-- small at the last ANALYZE) is estimated at about one row, and then any
-- index that starts with tenant_id looks as good as the primary key: a
-- send's single-row lookups and updates walked every pending survey of a
-- tenant with a fresh wave of 10,000 (2-4 ms each instead of 0.05 ms).
-- Autovacuum analyzes after 10 % of a table changed by default (100,000
-- rows at a million); here after 1 % plus 1,000.
ALTER TABLE surveys SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 1000);
