//! Group commit: orders placed at the same moment are stored in one
//! transaction.
//!
//! An order in a transaction of its own cost six round trips to the store
//! (on SQLite, each a hand-off to sqlx's database thread and back) and a turn
//! at the write lock; under load that hand-off, not SQL, was most of an
//! order's cost (BENCHMARKS.md). Instead, PlaceOrder calls queue their priced
//! orders here, and one task writes whatever is queued, up to [`MAX_BATCH`],
//! in one transaction of four statements. A lone order waits for nothing;
//! under load, orders queue while the previous batch commits and share the
//! next transaction.

use crate::store::{OrderStore, Placed, Placement};
use dishpatch::{error::ServiceError, validate::MAX_ORDER_LINES};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// The most orders one transaction stores.
const MAX_BATCH: usize = 32;

// A batch's order lines are one INSERT of seven values a line; SQLite takes
// at most 32,766 values in one statement.
const _: () = assert!(MAX_BATCH * MAX_ORDER_LINES * 7 <= 32_766);

/// What a queued order learns.
type Answer = Result<Placed, Status>;

/// The queue of orders to store, and the task that stores them.
#[derive(Debug, Clone)]
pub(crate) struct OrderWriter {
    queue: mpsc::Sender<(Placement, oneshot::Sender<Answer>)>,
}

impl OrderWriter {
    /// Starts the task that stores queued orders; it ends when the last
    /// writer is dropped, after storing what was queued.
    pub(crate) fn spawn(store: OrderStore) -> Self {
        let (queue, queued) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(store_batches(store, queued));
        Self { queue }
    }

    /// Stores an order with the others queued with it.
    pub(crate) async fn place(&self, placement: Placement) -> Answer {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((placement, answer))
            .await
            .map_err(|_| Status::unavailable("order-svc is stopping; retry"))?;
        answered
            .await
            .map_err(|_| Status::internal("the order writer stopped before answering"))?
    }
}

async fn store_batches(store: OrderStore, mut queued: mpsc::Receiver<(Placement, oneshot::Sender<Answer>)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (placements, answers): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match store.insert_all(placements).await {
            Ok(placed) => {
                for (answer, placed) in answers.into_iter().zip(placed) {
                    // The caller may have gone; the order is stored anyway.
                    answer.send(Ok(placed)).ok();
                }
            }
            Err(error) => {
                let status = Status::from(ServiceError::Store(error));
                for answer in answers {
                    answer.send(Err(status.clone())).ok();
                }
            }
        }
    }
}
