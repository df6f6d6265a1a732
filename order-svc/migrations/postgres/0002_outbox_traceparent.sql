-- The W3C traceparent of the request whose write queued a notification, so
-- the relay's call, and the notification, belong to that request's trace.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
