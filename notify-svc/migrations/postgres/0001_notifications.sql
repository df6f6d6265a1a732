-- The notification log. `seq` is the position in the log; inserts take an
-- advisory lock so that numbers commit in order (see store.rs). Times are
-- microseconds since the Unix epoch.
CREATE TABLE notifications (
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT COLLATE "C" NOT NULL UNIQUE,
    event_id   TEXT    NOT NULL UNIQUE,
    order_id   TEXT COLLATE "C" NOT NULL,
    recipient  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX notifications_by_order ON notifications (order_id, seq);
CREATE INDEX notifications_by_recipient ON notifications (recipient, seq);
