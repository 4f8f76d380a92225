-- Exactly-once email. A send claims a batch of due surveys (claimed_at, a
-- lease: a worker that dies leaves claims that lapse after a minute), then
-- for each email records handed_at, committed before the SMTP server gets
-- the final "." of DATA, and marks the survey sent after the server's reply.
-- A crash between the "." and the status change leaves a pending survey
-- with handed_at set: the server may hold the email, so the next claim
-- finishes it as sent instead of emailing again. A crash before the "."
-- loses nothing: without its terminating "." the server discards the
-- message.
ALTER TABLE surveys ADD COLUMN claimed_at timestamptz, ADD COLUMN handed_at timestamptz;
