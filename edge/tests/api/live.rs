//! Live notifications over Server-Sent Events (`/api/notifications/stream`):
//! in order, resumed exactly where a reader left off, carried over when the
//! notify-svc replica under a stream dies or drains, a reader that falls
//! behind told where to resume, errors before the stream as JSON and after
//! it as an `error` event, keep-alive comments, and streams ended by the
//! edge's shutdown or by their token's expiry.

use super::{Fleet, client_of};
use dishpatch::proto::notify::v1::{
    RecordNotificationRequest, RecordNotificationsRequest, notify_service_client::NotifyServiceClient,
};
use serde_json::Value;
use stack::Part;
use std::{net::SocketAddr, time::Duration};
use test_support::eventually;
use tokio_util::sync::CancellationToken;

/// How long a test waits for the next event.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

/// One event of a stream.
#[derive(Debug)]
pub(super) struct SseEvent {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A stream being read, event by event.
pub(super) struct EventStream {
    response: reqwest::Response,
    unread: String,
    /// Comment lines read so far (keep-alives).
    comments: usize,
    /// The `retry:` the stream asked for, once read.
    retry: Option<String>,
}

impl EventStream {
    /// Opens `path` of the edge at `base` as `http`'s caller, resuming after
    /// `last_event_id` if given.
    pub(super) async fn open(
        http: &reqwest::Client,
        base: &str,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the edge answers");
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        assert_eq!(
            response.headers()["connection"],
            "close",
            "a stream's connection ends with it"
        );
        Self {
            response,
            unread: String::new(),
            comments: 0,
            retry: None,
        }
    }

    /// The replica the stream started on.
    fn served_by(&self) -> SocketAddr {
        self.response.headers()["x-served-by"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The next event (comments and `retry:` are taken note of), or `None`
    /// once the stream ends.
    pub(super) async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.parse_unread() {
                return Some(event);
            }
            if !self.read_more().await {
                return None;
            }
        }
    }

    /// The first event of what was read, if a whole one was.
    fn parse_unread(&mut self) -> Option<SseEvent> {
        while let Some(end) = self.unread.find("\n\n") {
            let block: String = self.unread.drain(..end + 2).collect();
            if let Some(event) = self.parse(&block) {
                return Some(event);
            }
        }
        None
    }

    /// Reads what comes next; `false` once the stream has ended.
    async fn read_more(&mut self) -> bool {
        let chunk = tokio::time::timeout(EVENT_LIMIT, self.response.chunk())
            .await
            .expect("more within the limit")
            .expect("the stream reads");
        match chunk {
            Some(chunk) => {
                self.unread.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
                true
            }
            None => false,
        }
    }

    /// The next `count` events.
    async fn take(&mut self, count: usize) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while events.len() < count {
            events.push(self.next().await.expect("the stream goes on"));
        }
        events
    }

    fn parse(&mut self, block: &str) -> Option<SseEvent> {
        let (mut id, mut event, mut data) = (None, None, None);
        for line in block.lines().filter(|line| !line.is_empty()) {
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => id = Some(value),
                "event" => event = Some(value),
                "data" => data = Some(serde_json::from_str(&value).expect("JSON data")),
                "retry" => self.retry = Some(value),
                other => panic!("an unknown field {other:?} in {block:?}"),
            }
        }
        Some(SseEvent {
            id,
            event: event?,
            data: data.expect("an event has data"),
        })
    }
}

/// Records `count` notifications for `recipient` directly at the notify-svc
/// replica at `addr`, each with a message of `size` characters; their
/// event ids start at `first`.
async fn record(addr: SocketAddr, recipient: &str, first: usize, count: usize, size: usize) {
    record_about(addr, "", recipient, first, count, size).await;
}

/// [`record`], about the order `order_id`.
async fn record_about(
    addr: SocketAddr,
    order_id: &str,
    recipient: &str,
    first: usize,
    count: usize,
    size: usize,
) {
    let mut client = NotifyServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let numbers: Vec<usize> = (first..first + count).collect();
    for batch in numbers.chunks(500) {
        let notifications = batch
            .iter()
            .map(|n| RecordNotificationRequest {
                event_id: format!("{recipient}-{n}"),
                order_id: order_id.to_owned(),
                recipient: recipient.to_owned(),
                kind: "test.told".to_owned(),
                message: format!("{n:0size$}"),
                ..Default::default()
            })
            .collect();
        client
            .record_notifications(RecordNotificationsRequest { notifications })
            .await
            .unwrap();
    }
}

/// The seqs of `events`, checked to be notifications for `recipient` whose
/// ids are their seqs.
fn seqs(events: &[SseEvent], recipient: &str) -> Vec<u64> {
    events
        .iter()
        .map(|event| {
            assert_eq!(event.event, "test.told", "{event:?}");
            assert_eq!(event.data["recipient"], recipient, "{event:?}");
            let seq = event.data["seq"].as_u64().unwrap();
            assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()), "{event:?}");
            seq
        })
        .collect()
}

/// Whether `seqs` increase.
fn increasing(seqs: &[u64]) -> bool {
    seqs.windows(2).all(|pair| pair[0] < pair[1])
}

#[tokio::test]
async fn notifications_arrive_live_and_resume_exactly_where_the_reader_left() {
    let fleet = Fleet::start().await;
    let base = fleet.url("");
    let notify = fleet.notifications[0].addr();
    let path = "/api/notifications/stream?recipient=live-reader";
    record(notify, "live-reader", 0, 3, 10).await;

    let mut stream = EventStream::open(&fleet.http, &base, path, None).await;
    let replayed = seqs(&stream.take(3).await, "live-reader");
    assert!(increasing(&replayed), "{replayed:?}");
    assert_eq!(stream.retry.as_deref(), Some("1000"), "reconnect after a second");
    record(notify, "live-reader", 3, 2, 10).await;
    let live = seqs(&stream.take(2).await, "live-reader");
    assert!(live[0] > replayed[2] && increasing(&live), "{live:?}");
    drop(stream);

    // Missed while away, then resumed after the last one read, on whichever
    // replica: exactly what was missed, nothing twice.
    record(fleet.notifications[1].addr(), "live-reader", 5, 2, 10).await;
    let last = live[1].to_string();
    let mut resumed = EventStream::open(&fleet.http, &base, path, Some(&last)).await;
    let missed = seqs(&resumed.take(2).await, "live-reader");
    assert!(missed[0] > live[1] && increasing(&missed), "{missed:?}");
    record(notify, "live-reader", 7, 1, 10).await;
    let next = seqs(&resumed.take(1).await, "live-reader");
    assert!(next[0] > missed[1]);

    // `after` does the same, and Last-Event-ID wins over it.
    let after = format!("{path}&after={}", replayed[0]);
    let mut from_after = EventStream::open(&fleet.http, &base, &after, None).await;
    assert_eq!(seqs(&from_after.take(1).await, "live-reader"), [replayed[1]]);
    let mut header_wins = EventStream::open(&fleet.http, &base, &after, Some(&last)).await;
    assert_eq!(seqs(&header_wins.take(1).await, "live-reader"), [missed[0]]);
}

#[tokio::test]
async fn an_order_s_whole_life_arrives_in_order_across_a_reconnect() {
    let fleet = Fleet::start().await;
    let (restaurant_id, items) = fleet.menu().await;
    let placed = fleet
        .send_json(
            reqwest::Method::POST,
            "/api/orders",
            serde_json::json!({
                "restaurantId": restaurant_id,
                "customer": "ana",
                "items": [{"menuItemId": items[0]["id"], "quantity": 1}],
                "deliveryAddress": "5 Hungry Lane",
            }),
        )
        .await;
    assert_eq!(placed.status(), 201);
    let id = placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/notifications/stream?orderId={id}&recipient=ana");
    let base = fleet.url("");
    let mut stream = EventStream::open(&fleet.http, &base, &path, None).await;
    let mut kinds = vec![stream.take(1).await.remove(0)];
    let moves = ["accepted", "preparing", "ready", "out_for_delivery", "delivered"];
    for (n, status) in moves.into_iter().enumerate() {
        let moved = fleet
            .send_json(
                reqwest::Method::PATCH,
                &format!("/api/orders/{id}/status"),
                serde_json::json!({"status": status}),
            )
            .await;
        assert_eq!(moved.status(), 200, "to {status}");
        if n == 2 {
            // Gone midway, back with the last id it read: nothing lost or doubled.
            let last = kinds.last().unwrap().id.clone().unwrap();
            drop(stream);
            stream = EventStream::open(&fleet.http, &base, &path, Some(&last)).await;
        }
        kinds.push(stream.take(1).await.remove(0));
    }
    let names: Vec<&str> = kinds.iter().map(|event| event.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "order.placed",
            "order.accepted",
            "order.preparing",
            "order.ready",
            "order.out_for_delivery",
            "order.delivered"
        ]
    );
    for event in &kinds {
        assert_eq!(event.data["orderId"], id.as_str());
        assert_eq!(event.data["kind"], event.event.as_str());
        assert!(
            event.data["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty())
        );
        assert!(
            event.data["createdAt"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z'))
        );
    }
    let ids: Vec<u64> = kinds
        .iter()
        .map(|event| event.data["seq"].as_u64().unwrap())
        .collect();
    assert!(increasing(&ids), "{ids:?}");
    // Nothing more came for this order and recipient.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "no event doubled"
    );
}

#[tokio::test]
async fn streams_carry_only_what_their_caller_may_read_and_are_limited_in_number() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.max_streams = 3;
    config.max_streams_per_caller = 2;
    let base = fleet.extra_edge(config).await;
    let notify = fleet.notifications[0].addr();
    let (ana, bob) = (
        client_of(&fleet.customer_token("ana")),
        client_of(&fleet.customer_token("bob")),
    );
    let order = "ord_0000000000000000000000000000abcd";
    record(notify, "bob", 0, 2, 10).await;
    record_about(notify, order, "ana", 0, 1, 10).await;
    record(notify, "ana", 1, 1, 10).await;

    // A customer's stream, with no recipient named, is their own; an order
    // filter narrows it.
    let mut own = EventStream::open(&ana, &base, "/api/notifications/stream", None).await;
    let mut about = EventStream::open(
        &ana,
        &base,
        &format!("/api/notifications/stream?orderId={order}"),
        None,
    )
    .await;
    let own_events = own.take(2).await;
    seqs(&own_events, "ana");
    assert_eq!(own_events[0].data["orderId"], order);
    assert_eq!(own_events[1].data["orderId"], Value::Null);
    let about_events = about.take(1).await;
    assert_eq!(about_events[0].data["orderId"], order);
    record_about(notify, order, "ana", 2, 1, 10).await;
    assert_eq!(
        about.take(1).await[0].data["orderId"],
        order,
        "the filter holds live too"
    );
    assert_eq!(own.take(1).await[0].data["orderId"], order);

    // Two per caller, three in all.
    let third = ana
        .get(format!("{base}/api/notifications/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 429, "a caller's third stream");
    assert_eq!(
        third.json::<Value>().await.unwrap()["error"]["code"],
        "too_many_streams"
    );
    let bobs = EventStream::open(&bob, &base, "/api/notifications/stream", None).await;
    let admin = fleet
        .http
        .get(format!("{base}/api/notifications/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 503, "the edge's fourth stream");
    assert!(admin.headers().contains_key("retry-after"));

    // Closed streams give their places back.
    drop((own, about, bobs));
    let metrics_url = format!("{base}/metrics");
    eventually("the streams closed", Duration::from_secs(5), || async {
        let metrics = fleet
            .http
            .get(&metrics_url)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .contains("dishpatch_edge_sse_streams_open 0\n")
            .then_some(())
    })
    .await;
    EventStream::open(&ana, &base, "/api/notifications/stream", None).await;
}

#[tokio::test]
async fn a_stream_outlives_its_replica_dying_and_draining() {
    let mut fleet = Fleet::start().await;
    let base = fleet.url("");
    let path = "/api/notifications/stream?recipient=steadfast";
    let mut stream = EventStream::open(&fleet.http, &base, path, None).await;
    let first = fleet
        .notifications
        .iter()
        .position(|replica| replica.addr() == stream.served_by())
        .expect("a notify-svc replica of the fleet");
    let other = 1 - first;
    let mut seen = Vec::new();
    record(fleet.notifications[first].addr(), "steadfast", 0, 2, 10).await;
    seen.extend(seqs(&stream.take(2).await, "steadfast"));

    // Killed: the stream goes on from another replica.
    fleet.notifications[first].kill().await;
    record(fleet.notifications[other].addr(), "steadfast", 2, 3, 10).await;
    seen.extend(seqs(&stream.take(3).await, "steadfast"));

    // Back, then the other one drains (SIGTERM): the stream moves back.
    fleet.restart(Part::NotifySvc, first).await;
    eventually(
        "the restarted replica in rotation",
        Duration::from_secs(10),
        || async {
            let health = fleet.get_json("/health").await;
            let replicas = health["services"]["notify-svc"]["replicas"].as_array()?.clone();
            replicas
                .iter()
                .all(|replica| replica["state"] == "healthy")
                .then_some(())
        },
    )
    .await;
    fleet.notifications[other].terminate();
    fleet.notifications[other].wait(Duration::from_secs(10)).await;
    record(fleet.notifications[first].addr(), "steadfast", 5, 2, 10).await;
    seen.extend(seqs(&stream.take(2).await, "steadfast"));
    assert_eq!(seen.len(), 7);
    assert!(increasing(&seen), "in order, none twice: {seen:?}");
}

#[tokio::test]
async fn errors_before_the_stream_are_json_and_after_it_an_error_event() {
    let mut fleet = Fleet::start().await;
    let stream = "/api/notifications/stream";
    for (query, last_event_id, status, says) in [
        ("?after=soon", None, 400, "after \"soon\""),
        ("", Some("-1"), 400, "Last-Event-ID \"-1\""),
        ("?orderId=nope", None, 400, "order_id"),
        ("?since=2026-01-01T00:00:00Z", None, 400, "since"),
    ] {
        let mut request = fleet.http.get(fleet.url(&format!("{stream}{query}")));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), status, "{query} {last_event_id:?}");
        let body: Value = refused.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    let ana = client_of(&fleet.customer_token("ana"));
    let forbidden = ana
        .get(fleet.url(&format!("{stream}?recipient=bob")))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403, "a customer streams only their own");
    let anonymous = reqwest::get(fleet.url(stream)).await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // Every notify-svc replica gone under a started stream: an error event
    // once none takes it again within the deadline, and the stream ends.
    let mut started = EventStream::open(
        &fleet.http,
        &fleet.url(""),
        &format!("{stream}?recipient=left"),
        None,
    )
    .await;
    for replica in &mut fleet.notifications {
        replica.kill().await;
    }
    let error = started.next().await.expect("an error event");
    assert_eq!(error.event, "error");
    assert_eq!(error.data["error"]["code"], "unavailable", "{:?}", error.data);
    assert!(!error.data["error"]["requestId"].as_str().unwrap().is_empty());
    assert!(started.next().await.is_none(), "the stream ends after its error");

    let unavailable = fleet.get(stream).await;
    assert_eq!(unavailable.status(), 503);
    let body: Value = unavailable.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.jwt_leeway = Duration::ZERO;
    let base = fleet.extra_edge(config).await;
    let ana = edge::auth::Principal::new("ana".to_owned(), edge::auth::Role::Customer, vec![]).unwrap();
    let token = fleet.token_for(&ana, Duration::from_secs(3));
    let ana = client_of(&token);
    let mut stream = EventStream::open(&ana, &base, "/api/notifications/stream", None).await;
    record(fleet.notifications[0].addr(), "ana", 0, 1, 10).await;
    let received = stream.take(1).await;

    let ended = stream.next().await.expect("an error event");
    assert_eq!(ended.event, "error");
    assert_eq!(ended.data["error"]["code"], "invalid_token", "{:?}", ended.data);
    assert!(
        ended.data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token expired"),
        "{:?}",
        ended.data
    );
    assert!(stream.next().await.is_none(), "the stream ends after its error");
    let again = ana
        .get(format!("{base}/api/notifications/stream"))
        .header("last-event-id", received[0].id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "the expired token opens no stream");
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_told_where_to_resume() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.stream_stall_limit = Duration::from_millis(300);
    let base = fleet.extra_edge(config).await;
    // More than the edge's buffer and both sockets' hold: about 9 MB.
    let total = 8000;
    record(fleet.notifications[0].addr(), "laggard", 0, total, 1000).await;
    let path = "/api/notifications/stream?recipient=laggard";

    let mut stream = EventStream::open(&fleet.http, &base, path, None).await;
    // Not reading: the edge's buffer fills and stays full.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut seen = Vec::new();
    let told = loop {
        let event = stream.next().await.expect("the stream ends with an event");
        if event.event == "error" {
            break event;
        }
        seen.extend(seqs(&[event], "laggard"));
    };
    assert!(stream.next().await.is_none(), "the stream ends after it");
    assert_eq!(told.data["error"]["code"], "too_slow", "{:?}", told.data);
    let last = seen.last().expect("some were sent first").to_string();
    assert_eq!(
        told.id.as_deref(),
        Some(last.as_str()),
        "resume after the last one sent"
    );
    assert!(seen.len() < total, "cut off before the end: {}", seen.len());

    // Resumed from there, reading along: the rest, exactly.
    let mut resumed = EventStream::open(&fleet.http, &base, path, Some(&last)).await;
    let rest = resumed.take(total - seen.len()).await;
    seen.extend(seqs(&rest, "laggard"));
    assert_eq!(seen.len(), total);
    assert!(increasing(&seen), "none missed, none twice");
}

#[tokio::test]
async fn idle_streams_keep_alive_and_end_when_the_edge_shuts_down() {
    let fleet = Fleet::start().await;
    let mut config = fleet.edge_config();
    config.stream_keep_alive = Duration::from_millis(100);
    let edge = edge::build(config).await.expect("the edge builds");
    let base = format!("http://{}", edge.local_addr());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(edge.run(shutdown.clone()));
    let mut stream = EventStream::open(
        &fleet.http,
        &base,
        "/api/notifications/stream?recipient=idle",
        None,
    )
    .await;
    // The first comment says what the stream is; the others keep it alive.
    while stream.comments < 4 {
        assert!(stream.parse_unread().is_none(), "nothing but comments");
        assert!(stream.read_more().await, "the stream goes on");
    }

    let metrics = fleet
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("dishpatch_edge_sse_streams_open 1\n"),
        "{metrics}"
    );

    shutdown.cancel();
    assert!(
        stream.next().await.is_none(),
        "the stream ends, with no error event"
    );
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the edge stops with a stream open")
        .unwrap();
}
