//! The gRPC face of notify-svc: checks each request, then delegates.

use crate::{
    domain::{self, NewNotification, NotificationFilter, Page},
    feed::Feed,
    store::NotificationStore,
};
use dishpatch::call::CallContext;
use dishpatch::proto::notify::v1::{self as pb, notify_service_server::NotifyService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// How many notifications may wait for a slow subscriber's connection.
const SUBSCRIBER_BUFFER: usize = 64;

/// A count of notifications in one request (at most `domain::MAX_BATCH`).
fn count(notifications: usize) -> u32 {
    u32::try_from(notifications).expect("a request holds at most MAX_BATCH notifications")
}

/// The `dishpatch.notify.v1.NotifyService` implementation.
#[derive(Debug, Clone)]
pub(crate) struct NotifyApi {
    store: NotificationStore,
    feed: Feed,
    streams_closed: CancellationToken,
}

impl NotifyApi {
    pub(crate) fn new(store: NotificationStore, feed: Feed, streams_closed: CancellationToken) -> Self {
        Self {
            store,
            feed,
            streams_closed,
        }
    }
}

#[tonic::async_trait]
impl NotifyService for NotifyApi {
    async fn record_notification(
        &self,
        request: Request<pb::RecordNotificationRequest>,
    ) -> Result<Response<pb::RecordNotificationResponse>, Status> {
        let deadline = CallContext::of(&request).deadline();
        let new = NewNotification::from_request(request.into_inner())?;
        let (notification, duplicate) = self
            .store
            .record(&new, deadline)
            .await
            .map_err(dishpatch::error::ServiceError::from)?;
        if duplicate {
            tracing::debug!(event_id = new.event_id, "duplicate event ignored");
        } else {
            tracing::debug!(
                seq = notification.seq,
                kind = notification.kind,
                "notification recorded"
            );
            self.feed.recorded();
        }
        Ok(Response::new(pb::RecordNotificationResponse {
            notification: Some(notification),
            duplicate,
        }))
    }

    async fn record_notifications(
        &self,
        request: Request<pb::RecordNotificationsRequest>,
    ) -> Result<Response<pb::RecordNotificationsResponse>, Status> {
        let deadline = CallContext::of(&request).deadline();
        let batch = domain::batch_from_request(request.into_inner())?;
        let recorded = self
            .store
            .record_all(&batch, deadline)
            .await
            .map_err(dishpatch::error::ServiceError::from)?;
        tracing::debug!(
            recorded,
            duplicates = batch.len() - recorded,
            "notifications recorded"
        );
        if recorded > 0 {
            self.feed.recorded();
        }
        Ok(Response::new(pb::RecordNotificationsResponse {
            recorded: count(recorded),
            duplicates: count(batch.len() - recorded),
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let (filter, page) = NotificationFilter::from_list(request.get_ref())?;
        // One more than the page, to know whether another page follows.
        let rows = self
            .store
            .list(
                &filter,
                Page {
                    size: page.size + 1,
                    ..page
                },
            )
            .await
            .map_err(dishpatch::error::ServiceError::from)?;
        let (notifications, more) = dishpatch::page::split(rows, page.size);
        let next_page_token =
            dishpatch::page::next_token(&notifications, more, |notification| notification.seq);
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications,
            next_page_token,
        }))
    }

    type SubscribeStream = ReceiverStream<Result<pb::Notification, Status>>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let request = request.into_inner();
        let filter = NotificationFilter::from_subscribe(&request)?;
        let (out, stream) = mpsc::channel(SUBSCRIBER_BUFFER);
        let (feed, store, stop) = (self.feed.clone(), self.store.clone(), self.streams_closed.clone());
        tokio::spawn(async move {
            feed.serve_subscriber(store, filter, request.after_seq, out, stop)
                .await;
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}
