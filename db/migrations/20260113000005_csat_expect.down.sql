DROP FUNCTION csat_expect(boolean, text);
