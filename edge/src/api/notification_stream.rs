//! `GET /api/notifications/stream`: notifications live, as Server-Sent
//! Events, each `id:` its seq, `event:` its kind, `data:` its JSON.
//!
//! Each client's stream is one `Subscribe` to a notify-svc replica through
//! the pool, read by a task of its own into a bounded buffer that the
//! response drains:
//! - the subscription ends or breaks (its replica drained, died or was cut
//!   off): the task subscribes again through the pool, from the last seq it
//!   forwarded, on whichever replica is healthy, and the client notices
//!   nothing; subscriptions that keep failing are made again after a
//!   growing wait, and if none forwards anything within the request
//!   deadline the client gets an `error` event and the stream ends;
//! - the client falls behind (its buffer full, and less than a buffer's
//!   worth taken within the stall limit): the subscription is dropped at
//!   once (a stalled one would hold the HTTP/2 window its replica's
//!   connection shares), and the client's next read is an `error` event
//!   (`too_slow`) whose id is the last notification it received, after
//!   which the stream ends;
//! - the client goes away: the task ends with its next send or wait,
//!   dropping the subscription;
//! - the edge shuts down: streams end, without an error, so clients
//!   reconnect to another edge;
//! - the caller's token expires: the stream ends with an `error` event
//!   (`invalid_token`) after the notifications already buffered.
//!
//! Streams are limited in number, in all and per caller: past either, the
//! request is refused (503, 429) before a stream starts. Errors before the
//! stream starts are the usual JSON errors with their status.

use super::{
    AppState, Call,
    dto::{Notification, NotificationStreamQuery},
    error::{ApiError, ErrorBody},
    extract::Query,
    identity::Caller,
};
use axum::{
    extract::State,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use dishpatch::{
    call::CallContext,
    metrics::Held,
    proto::notify::v1::{self as pb, notify_service_client::NotifyServiceClient},
    time::{Backoff, jittered},
    wire::header::SERVED_BY,
};
use dishpatch_pool::{Answered, CallError, CallKind, ReplicaPool};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Streaming};

/// Notifications buffered for a client; one that takes less than this many
/// within the stall limit, while its buffer is full, is cut off.
const BUFFER: usize = 256;

/// How live streams behave.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// How often an idle stream sends a comment, so that proxies do not cut
    /// it.
    pub keep_alive: Duration,
    /// How long a client may leave its buffer full, taking less than a
    /// buffer's worth, before it is cut off and told to resume.
    pub stall_limit: Duration,
    /// How long a client waits before reconnecting (`retry:`).
    pub reconnect: Duration,
    /// Cancelled when the edge shuts down: every stream ends.
    pub closing: CancellationToken,
    /// How many streams may be open.
    pub limits: Arc<StreamLimits>,
}

/// How many streams may be open: in all, and per caller.
#[derive(Debug)]
pub struct StreamLimits {
    total: Arc<Semaphore>,
    per_caller: u32,
    open: Mutex<HashMap<String, u32>>,
}

impl StreamLimits {
    /// At most `total` streams, and `per_caller` of any one caller.
    pub fn new(total: u32, per_caller: u32) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total as usize)),
            per_caller,
            open: Mutex::default(),
        }
    }

    /// Room for one more stream of `caller`, held until it is dropped.
    fn admit(self: &Arc<Self>, caller: &str) -> Result<Admitted, ApiError> {
        let permit = self.total.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the edge holds as many live streams as it can; retry after Retry-After seconds",
            )
        })?;
        let mut open = self.open.lock().expect("stream counts");
        let count = open.entry(caller.to_owned()).or_default();
        if *count >= self.per_caller {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "you have {} live streams open, as many as one caller may; close one first",
                    self.per_caller
                ),
            ));
        }
        *count += 1;
        Ok(Admitted {
            _permit: permit,
            limits: self.clone(),
            caller: caller.to_owned(),
        })
    }
}

/// One open stream's place within the limits.
#[derive(Debug)]
struct Admitted {
    _permit: OwnedSemaphorePermit,
    limits: Arc<StreamLimits>,
    caller: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().expect("stream counts");
        if let Some(count) = open.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// Streams notifications as they are recorded: a customer's own, a staff
/// member's restaurant's (`restaurant:<id>`), or, for an admin, any;
/// after `Last-Event-ID` (or `after`), so a client that reconnects receives
/// exactly what it missed.
#[utoipa::path(
    get,
    path = "/api/notifications/stream",
    operation_id = "streamNotifications",
    security(("bearer" = [])),
    tag = "notifications",
    params(
        NotificationStreamQuery,
        ("Last-Event-ID" = Option<u64>, Header,
            description = "The seq of the last notification received: the stream resumes after it (over `after`)"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `id:` a notification's seq, `event:` its kind \
            (or `error`, a JSON error body, after which the stream ends), `data:` the notification as JSON",
            content_type = "text/event-stream", body = Notification),
        (status = 400, description = "A malformed filter or resume point", body = ErrorBody),
        (status = 429, description = "The caller has as many streams open as one may", body = ErrorBody),
        (status = 503, description = "No notify-svc replica to subscribe to, or the edge holds as many \
            streams as it can", body = ErrorBody),
    ),
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    call: Call,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<NotificationStreamQuery>,
) -> Result<Response, ApiError> {
    let settings = state.streams.clone();
    if settings.closing.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this edge is shutting down; connect again",
        ));
    }
    let request = pb::SubscribeRequest {
        after_seq: resume_point(&headers, query.after.as_deref())?,
        order_id: query.order_id.unwrap_or_default(),
        recipient: caller.notification_recipient(query.recipient)?,
    };
    let admitted = settings.limits.admit(&caller.sub)?;
    let pool = state.pools.notifications.clone();
    let subscribed = subscribe(&pool, &call, request.clone()).await?;
    let served_by = subscribed.served_by;
    let (buffer, events) = mpsc::channel(BUFFER);
    let (end, ending) = oneshot::channel();
    let delivery = Delivery {
        events,
        ending: Some(ending),
        failure: None,
        last: request.after_seq,
        done: false,
        request_id: call
            .request_id()
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        trace_id: call.trace().map(|trace| trace.trace_id()).unwrap_or_default(),
        _open: (admitted, Held::new(&state.metrics.streams)),
    };
    let forwarder = Forwarder {
        pool,
        context: CallContext::clone(&call),
        request,
        deadline: state.deadline,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(2)),
        settings: settings.clone(),
    };
    // The stream reads what the token allows for as long as the token may
    // be used, not beyond.
    let expires = Instant::now() + caller.0.usable_for();
    tokio::spawn(async move {
        let ending = tokio::select! {
            ending = forwarder.forward(subscribed.message, &buffer) => ending,
            () = tokio::time::sleep_until(expires) => Some(Ending::Failed(ApiError::invalid_token(
                "your token expired; reconnect with a fresh one (Last-Event-ID resumes after the last \
                 notification received)",
            ))),
        };
        if let Some(ending) = ending {
            let _ = end.send(ending);
        }
    });
    let first = Event::default()
        .retry(settings.reconnect)
        .comment("live notifications");
    let events = futures_util::stream::once(std::future::ready(Ok(first))).chain(delivery.into_stream());
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(settings.keep_alive))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(SERVED_BY, served_by);
    // Proxies that buffer responses (nginx) must pass this one on as it comes.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // The connection ends with the stream. A stream ends when its edge
    // stops; the client's reconnect then opens a connection, which another
    // edge accepts, rather than reusing this one on a draining edge.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}

/// Where the stream resumes: after the `Last-Event-ID` a reconnecting
/// client sends, else after `after`, else from the start of the log.
fn resume_point(headers: &HeaderMap, after: Option<&str>) -> Result<u64, ApiError> {
    let last_event_id = headers.get("last-event-id").map(|id| id.to_str().unwrap_or("?"));
    let (name, value) = match (last_event_id, after) {
        (Some(id), _) => ("Last-Event-ID", id),
        (None, Some(after)) => ("after", after),
        (None, None) => return Ok(0),
    };
    value.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{name} {value:?} is not a notification's seq (a whole number, 0 or more)"
        ))
    })
}

/// A subscription through the pool: its first answer is its headers.
async fn subscribe(
    pool: &ReplicaPool,
    context: &CallContext,
    request: pb::SubscribeRequest,
) -> Result<Answered<Streaming<pb::Notification>>, CallError> {
    pool.call(context, CallKind::Read, request, |channel, request| async move {
        NotifyServiceClient::new(channel).subscribe(request).await
    })
    .await
}

/// Why a stream ends, when its client must be told.
#[derive(Debug)]
enum Ending {
    /// The client fell behind.
    TooSlow,
    /// No replica took the subscription again, or one refused it.
    Failed(ApiError),
}

/// The task that reads one client's subscription into its buffer.
#[derive(Debug)]
struct Forwarder {
    pool: ReplicaPool,
    /// The request's context: its id and trace name every subscription.
    context: CallContext,
    /// The subscription, from the start; `after_seq` moves on.
    request: pb::SubscribeRequest,
    /// How long subscriptions may fail before the client is told.
    deadline: Duration,
    /// The wait before subscribing again after a subscription that
    /// forwarded nothing.
    backoff: Backoff,
    settings: StreamSettings,
}

impl Forwarder {
    /// Forwards until the client goes away or the edge shuts down (`None`),
    /// or until the client must be told why its stream ends.
    async fn forward(
        mut self,
        mut subscription: Streaming<pb::Notification>,
        buffer: &mpsc::Sender<(u64, Event)>,
    ) -> Option<Ending> {
        let closing = self.settings.closing.clone();
        // Since when the subscriptions have forwarded nothing, if so, and
        // when the current one was made.
        let mut failing_since: Option<Instant> = None;
        let mut subscribed_at = Instant::now();
        let mut stall = Stall::default();
        loop {
            let received = tokio::select! {
                () = closing.cancelled() => return None,
                () = buffer.closed() => return None,
                received = subscription.message() => received,
            };
            let lost = match received {
                Ok(Some(notification)) => {
                    // A new subscription replays from the last seq sent: never
                    // send one twice.
                    if notification.seq <= self.request.after_seq {
                        continue;
                    }
                    let seq = notification.seq;
                    let event = (seq, event_of(notification));
                    match stall
                        .send(buffer, event, self.settings.stall_limit, &closing)
                        .await
                    {
                        Sent::Yes => {}
                        Sent::Stop => return None,
                        Sent::Stalled => return Some(Ending::TooSlow),
                    }
                    self.request.after_seq = seq;
                    failing_since = None;
                    self.backoff.reset();
                    continue;
                }
                Ok(None) => "ended".to_owned(),
                Err(status) if is_lost(status.code()) => status.to_string(),
                Err(status) => return Some(Ending::Failed(ApiError::from_status(&status))),
            };
            tracing::debug!(
                why = lost,
                after = self.request.after_seq,
                "subscription lost; subscribing again"
            );
            // One that lasted, even if quiet, was no failure.
            if subscribed_at.elapsed() >= self.deadline {
                failing_since = None;
                self.backoff.reset();
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            subscription = match self.subscribe_again(since, buffer).await {
                Ok(subscription) => subscription,
                Err(ending) => return ending,
            };
            subscribed_at = Instant::now();
        }
    }

    /// A subscription again, from the last seq forwarded: at once after
    /// one that forwarded something, else after a growing wait, until the
    /// subscriptions have forwarded nothing for the request deadline;
    /// else how the stream ends (`None`: the client went away or the edge
    /// is shutting down meanwhile).
    async fn subscribe_again(
        &mut self,
        failing_since: Instant,
        buffer: &mpsc::Sender<(u64, Event)>,
    ) -> Result<Streaming<pb::Notification>, Option<Ending>> {
        let give_up = failing_since + self.deadline;
        loop {
            let wait = if self.backoff.is_reset() {
                Duration::ZERO
            } else {
                jittered(self.backoff.next_wait(), 0.5)
            };
            if !self.backoff.is_reset() && Instant::now() + wait >= give_up {
                return Err(Some(Ending::Failed(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "notify-svc kept failing this stream; connect again later",
                ))));
            }
            let context = self
                .context
                .with_deadline(Some(Instant::now() + wait + self.deadline));
            let subscribed = tokio::select! {
                () = self.settings.closing.cancelled() => return Err(None),
                () = buffer.closed() => return Err(None),
                subscribed = async {
                    tokio::time::sleep(wait).await;
                    subscribe(&self.pool, &context, self.request.clone()).await
                } => subscribed,
            };
            // The next loss, unless this subscription forwards something,
            // waits first.
            if self.backoff.is_reset() {
                self.backoff.next_wait();
            }
            match subscribed {
                Ok(subscribed) => return Ok(subscribed.message),
                Err(failed) if is_lost(failed.status().code()) && Instant::now() < give_up => {
                    tracing::debug!(error = %failed, "subscribing again failed");
                }
                Err(failed) => return Err(Some(Ending::Failed(ApiError::from(failed)))),
            }
        }
    }
}

/// Whether a subscription failed for want of a replica (one that died,
/// drained or could not be reached), which another may make good.
fn is_lost(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Internal | Code::DeadlineExceeded
    )
}

/// Whether a client keeps up: since its buffer filled, how many it took.
#[derive(Debug, Default)]
struct Stall {
    /// When the buffer was found full, and how many had been sent then.
    full: Option<(Instant, u64)>,
    sent: u64,
}

/// What became of a notification sent to the buffer.
enum Sent {
    Yes,
    /// The client went away or the edge is shutting down.
    Stop,
    /// The client fell behind.
    Stalled,
}

impl Stall {
    /// Sends `event`, waiting for room while the client keeps up: it must
    /// take a buffer's worth within `limit` of finding its buffer full.
    async fn send(
        &mut self,
        buffer: &mpsc::Sender<(u64, Event)>,
        event: (u64, Event),
        limit: Duration,
        closing: &CancellationToken,
    ) -> Sent {
        let event = match buffer.try_send(event) {
            Ok(()) => return self.sent(),
            Err(mpsc::error::TrySendError::Closed(_)) => return Sent::Stop,
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        let (since, _) = *self.full.get_or_insert((Instant::now(), self.sent));
        tokio::select! {
            () = closing.cancelled() => Sent::Stop,
            sent = buffer.send(event) => match sent {
                Ok(()) => self.sent(),
                Err(_) => Sent::Stop,
            },
            () = tokio::time::sleep_until(since + limit) => Sent::Stalled,
        }
    }

    fn sent(&mut self) -> Sent {
        self.sent += 1;
        // A buffer's worth taken since it was full: the client keeps up.
        if self
            .full
            .is_some_and(|(_, then)| self.sent - then >= BUFFER as u64)
        {
            self.full = None;
        }
        Sent::Yes
    }
}

/// What the response sends: the buffer's events, then, if the stream ends
/// for a reason the client must know, an `error` event. A client that fell
/// behind gets it at once, without the events still buffered: its id, the
/// last notification the client received, is where it resumes.
struct Delivery {
    events: mpsc::Receiver<(u64, Event)>,
    /// Why the forwarder stopped, once it has (`None` once read).
    ending: Option<oneshot::Receiver<Ending>>,
    /// A failure to tell once the buffer is drained.
    failure: Option<ApiError>,
    /// The seq of the last notification the client received.
    last: u64,
    done: bool,
    request_id: String,
    trace_id: String,
    /// The stream counted open, within the limits, until it is dropped.
    _open: (Admitted, Held),
}

impl Delivery {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        futures_util::stream::unfold(self, |mut delivery| async move {
            let event = delivery.next().await?;
            Some((Ok(event), delivery))
        })
    }

    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        loop {
            let Some(ending) = &mut self.ending else {
                if let Some((seq, event)) = self.events.recv().await {
                    self.last = seq;
                    return Some(event);
                }
                self.done = true;
                let failure = self.failure.take()?;
                return Some(self.error_event(failure.code, failure.message, None));
            };
            tokio::select! {
                biased;
                ended = ending => {
                    self.ending = None;
                    match ended {
                        Ok(Ending::TooSlow) => {
                            self.done = true;
                            let message = format!(
                                "the stream fell too far behind its reader; resume after {} (Last-Event-ID)",
                                self.last
                            );
                            return Some(self.error_event("too_slow", message, Some(self.last)));
                        }
                        Ok(Ending::Failed(failure)) => self.failure = Some(failure),
                        // The client went away, or the edge is shutting down.
                        Err(_) => {
                            self.done = true;
                            return None;
                        }
                    }
                }
                event = self.events.recv() => match event {
                    Some((seq, event)) => {
                        self.last = seq;
                        return Some(event);
                    }
                    // The forwarder stopped; its ending says why.
                    None => continue,
                },
            }
        }
    }

    /// An `error` event with the body a JSON error would have.
    fn error_event(&self, code: &'static str, message: String, id: Option<u64>) -> Event {
        let body = ErrorBody::new(code, message, self.request_id.clone(), self.trace_id.clone());
        let event = Event::default().event("error");
        let event = match id {
            Some(id) => event.id(id.to_string()),
            None => event,
        };
        event.json_data(body).expect("an error serializes")
    }
}

/// A notification as an event: `id:` its seq, `event:` its kind.
fn event_of(notification: pb::Notification) -> Event {
    let (seq, kind) = (notification.seq, notification.kind.clone());
    Event::default()
        .id(seq.to_string())
        .event(kind)
        .json_data(Notification::from(notification))
        .expect("a notification serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills a buffer that a reader drains by `take` events every `every`;
    /// whether the reader was cut off (a 10 s stall limit) within `within`.
    async fn cut_off(take: usize, every: Duration, within: Duration) -> bool {
        let (buffer, mut events) = mpsc::channel(BUFFER);
        let reader = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for _ in 0..take {
                    events.recv().await;
                }
            }
        });
        let (closing, mut stall) = (CancellationToken::new(), Stall::default());
        let started = Instant::now();
        let mut seq = 0;
        let stalled = loop {
            if started.elapsed() >= within {
                break false;
            }
            seq += 1;
            let event = (seq, Event::default().data("-"));
            match stall
                .send(&buffer, event, Duration::from_secs(10), &closing)
                .await
            {
                Sent::Yes => {}
                Sent::Stalled => break true,
                Sent::Stop => panic!("nothing stops this reader"),
            }
        };
        reader.abort();
        stalled
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_taking_a_buffer_s_worth_within_the_limit_keeps_up() {
        assert!(!cut_off(BUFFER, Duration::from_secs(5), Duration::from_secs(120)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_trickles_while_its_buffer_stays_full_is_cut_off() {
        // One event every 9 s: never 10 s without taking one, yet never
        // catching up.
        assert!(cut_off(1, Duration::from_secs(9), Duration::from_secs(120)).await);
    }
}
