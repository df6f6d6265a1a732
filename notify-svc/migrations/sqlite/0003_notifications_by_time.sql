-- Where `since` starts in the log: notification times never decrease along
-- it (store.rs), so the first notification at or after a time is one seek,
-- and everything after it in seq order is what the filter reads.
CREATE INDEX notifications_by_time ON notifications (created_at, seq);

-- Times recorded before that rule (by replicas whose clocks differed) are
-- raised to the latest one before them, by the few milliseconds they were
-- behind, so that the rule holds for the whole log.
UPDATE notifications SET created_at = running.at
FROM (SELECT seq, max(created_at) OVER (ORDER BY seq) AS at FROM notifications) AS running
WHERE running.seq = notifications.seq AND running.at > notifications.created_at;
