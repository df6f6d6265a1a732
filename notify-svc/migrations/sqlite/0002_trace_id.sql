-- The W3C trace id of the request that caused a notification ('' if none).
ALTER TABLE notifications ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
