-- csat_expect(ok, what) fails the statement it is evaluated in, with
-- SQLSTATE CS001 and the message what, unless ok is true.
--
-- A write sent with its transaction's COMMIT in one message (db.WithDeferred)
-- cannot have its outcome checked by the client before the COMMIT runs:
-- Postgres has run the whole message by the time the answer arrives. What
-- the client would have checked is checked in the statement instead, and a
-- failure stops the message before its COMMIT, so the transaction rolls
-- back as it did when the client checked (db.UpdateLockedSurvey).
CREATE FUNCTION csat_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', what USING ERRCODE = 'CS001';
    END IF;
    RETURN true;
END
$$;
