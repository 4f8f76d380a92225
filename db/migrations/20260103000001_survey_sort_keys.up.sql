-- Keyset paging over the GraphQL survey list's sort orders: each index
-- holds exactly the (sort key, id) row the page queries compare and order
-- by, so a page is an index range scan at any depth. Creation order uses
-- the primary key (ids sort by creation time).
CREATE INDEX surveys_sort_sent ON surveys (tenant_id, (COALESCE(sent_at, '-infinity'::timestamptz)), id);
CREATE INDEX surveys_sort_responded ON surveys (tenant_id, (COALESCE(responded_at, '-infinity'::timestamptz)), id);
CREATE INDEX surveys_sort_rating ON surveys (tenant_id, (COALESCE(rating, 0)), id);
