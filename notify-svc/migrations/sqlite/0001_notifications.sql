-- The notification log. `seq` is the position in the log: AUTOINCREMENT so
-- a number is never reused. Times are microseconds since the Unix epoch.
CREATE TABLE notifications (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    event_id   TEXT    NOT NULL UNIQUE,
    order_id   TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX notifications_by_order ON notifications (order_id, seq);
CREATE INDEX notifications_by_recipient ON notifications (recipient, seq);
