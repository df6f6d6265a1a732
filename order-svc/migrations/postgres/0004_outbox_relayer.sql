-- Which replica relays a notification: the one whose write queued it (a
-- number it draws at start). Another replica relays it too only once it has
-- waited past the takeover time (its relayer stopped or is stuck), so two
-- relays do not both send, and delete, every row. Rows from before this
-- column (0) are everyone's at once.
ALTER TABLE outbox ADD COLUMN relayer BIGINT NOT NULL DEFAULT 0;
