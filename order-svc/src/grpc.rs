//! The gRPC face of order-svc: checks each request, prices orders through
//! restaurant-svc, then delegates to the store.

use crate::{
    domain::{NewOrder, OrderFilter, StatusChange},
    group_commit::OrderWriter,
    relay::RelayWaker,
    store::{OrderStore, Placed, Placement, StoredOrder},
};
use dishpatch::wire::dependency_unavailable;
use dishpatch::{
    call::CallContext,
    error::ServiceError,
    proto::{
        order::v1::{self as pb, order_service_server::OrderService},
        restaurant::v1::{
            ItemQuantity, PriceItemsRequest, restaurant_service_client::RestaurantServiceClient,
        },
    },
    trace::TraceContext,
};
use dishpatch_pool::{CallKind, ReplicaPool};
use tonic::{Code, Request, Response, Status};

/// How often a status change is retried when another call moved the same
/// order between our read and our write.
const MOVE_ATTEMPTS: usize = 3;

/// The `dishpatch.order.v1.OrderService` implementation.
#[derive(Debug, Clone)]
pub(crate) struct OrderApi {
    pub(crate) store: OrderStore,
    pub(crate) restaurants: ReplicaPool,
    pub(crate) writer: OrderWriter,
    pub(crate) relay: RelayWaker,
}

impl OrderApi {
    /// Prices the order from restaurant-svc's current menu.
    async fn price(
        &self,
        context: &CallContext,
        new: &NewOrder,
    ) -> Result<dishpatch::proto::restaurant::v1::PriceItemsResponse, ServiceError> {
        let request = PriceItemsRequest {
            restaurant_id: new.restaurant_id.clone(),
            items: new
                .lines
                .iter()
                .map(|line| ItemQuantity {
                    menu_item_id: line.menu_item_id.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        };
        // Pricing changes nothing: the pool may retry it on another replica.
        let priced = self
            .restaurants
            .call(context, CallKind::Read, request, |channel, request| async move {
                RestaurantServiceClient::new(channel).price_items(request).await
            })
            .await
            .map_err(Status::from);
        match priced {
            Ok(priced) => Ok(priced.message),
            // The client's own mistakes, told as restaurant-svc told them.
            Err(status)
                if matches!(
                    status.code(),
                    Code::NotFound
                        | Code::FailedPrecondition
                        | Code::InvalidArgument
                        | Code::DeadlineExceeded
                ) =>
            {
                Err(ServiceError::Downstream(status))
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "pricing failed");
                // Ours to pass on, but not our own failure: the edge keeps
                // this replica, whose other calls still work.
                Err(ServiceError::Downstream(dependency_unavailable(
                    Status::unavailable(format!(
                        "restaurant-svc could not price the order: {}",
                        status.message()
                    )),
                    "restaurant-svc",
                )))
            }
        }
    }

    /// The order placed before with the same idempotency key, if it is the
    /// same order; ALREADY_EXISTS if the key was used for another.
    async fn replay(&self, new: &NewOrder) -> Result<Option<pb::Order>, ServiceError> {
        let Some(key) = &new.idempotency_key else {
            return Ok(None);
        };
        match self.store.by_idempotency_key(&new.customer, key).await? {
            None => Ok(None),
            Some(placed) if new.is_same_as(&placed.order) => Ok(Some(placed.order)),
            Some(placed) => Err(ServiceError::AlreadyExists(format!(
                "idempotency key {key:?} was already used by {} for a different order ({})",
                new.customer, placed.order.id
            ))),
        }
    }

    async fn order(&self, id: &str) -> Result<StoredOrder, ServiceError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("order {id} not found")))
    }
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let context = CallContext::of(&request);
        let new = NewOrder::from_request(request.into_inner())?;
        // A key is used once, so the common case is a new order: it is
        // priced and stored at once, and only an order the store refuses for
        // its key is looked up (a replay, or a concurrent call that won).
        let priced = match self.price(&context, &new).await {
            Ok(priced) => priced,
            // A retry of an order placed before gets that order, even if
            // the menu changed or restaurant-svc is down since.
            Err(refused) => return self.replay(&new).await?.map(Response::new).ok_or(refused.into()),
        };
        let placed = match self
            .writer
            .place(
                Placement {
                    new,
                    priced,
                    traceparent: context.trace().map(TraceContext::traceparent),
                },
                context.deadline(),
            )
            .await?
        {
            Placed::Stored(placed) => placed,
            Placed::KeyUsed(new) => {
                let order = self.replay(&new).await?.ok_or_else(|| {
                    Status::aborted("a concurrent order with the same idempotency key did not commit; retry")
                })?;
                return Ok(Response::new(order));
            }
        };
        self.relay.wake();
        tracing::info!(
            id = placed.order.id,
            total_cents = placed.order.total_cents,
            "order placed"
        );
        Ok(Response::new(placed.order))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let id = &request.get_ref().id;
        dishpatch::ids::ORDER.check("id", id)?;
        Ok(Response::new(self.order(id).await?.order))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let filter = OrderFilter::from_request(request.get_ref())?;
        let (orders, more) = self.store.list(&filter).await?;
        let next_page_token = dishpatch::page::next_token(&orders, more, |order| order.id.clone());
        Ok(Response::new(pb::ListOrdersResponse {
            orders,
            next_page_token,
        }))
    }

    async fn update_order_status(
        &self,
        request: Request<pb::UpdateOrderStatusRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let context = CallContext::of(&request);
        let change = StatusChange::from_request(request.get_ref())?;
        for _ in 0..MOVE_ATTEMPTS {
            let order = self.order(&change.order_id).await?;
            if !order.status.can_move_to(change.next) {
                return Err(order.status.refuse_move(&change.order_id, change.next).into());
            }
            if self.store.move_status(&order, change.next, &context).await? {
                self.relay.wake();
                tracing::info!(
                    id = change.order_id,
                    from = order.status.name(),
                    to = change.next.name(),
                    "order moved"
                );
                return Ok(Response::new(self.order(&change.order_id).await?.order));
            }
        }
        Err(Status::aborted(format!(
            "order {} kept changing under concurrent updates; retry",
            change.order_id
        )))
    }
}
