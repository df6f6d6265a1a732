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
//!
//! An order is stored only while its caller still waits for it: one whose
//! caller went away (the call was cancelled: its handler, and with it the
//! answer's receiver, was dropped) or whose deadline passed is left out of
//! the batch, and a batch in which that happens to an order between the
//! statements and the commit is rolled back and written again without it.
//! So an order is never stored after its client was told it failed.

use crate::store::{Batch, OrderStore, Placed, Placement};
use dishpatch::{error::ServiceError, store::WriteError, validate::MAX_ORDER_LINES};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tonic::Status;

/// The most orders one transaction stores.
const MAX_BATCH: usize = 32;

// A batch's order lines are one INSERT of seven values a line; SQLite takes
// at most 32,766 values in one statement.
const _: () = assert!(MAX_BATCH * MAX_ORDER_LINES * 7 <= 32_766);

/// What a queued order learns.
type Answer = Result<Placed, Status>;

/// The caller of a queued order: when it stops waiting, and where it waits.
#[derive(Debug)]
struct Caller {
    deadline: Option<Instant>,
    answer: oneshot::Sender<Answer>,
}

impl Caller {
    /// Whether the caller still waits for its order.
    fn waits(&self) -> bool {
        !self.answer.is_closed() && self.deadline.is_none_or(|deadline| deadline > Instant::now())
    }

    /// Tells it the order was not stored because it stopped waiting.
    fn gave_up(self) {
        let status = Status::deadline_exceeded(
            "the order was not placed: its caller's deadline passed before it could be stored",
        );
        self.answer.send(Err(status)).ok();
    }
}

/// The queue of orders to store, and the task that stores them.
#[derive(Debug, Clone)]
pub(crate) struct OrderWriter {
    queue: mpsc::Sender<(Placement, Caller)>,
}

impl OrderWriter {
    /// Starts the task that stores queued orders; it ends when the last
    /// writer is dropped, after storing what was queued.
    pub(crate) fn spawn(store: OrderStore) -> Self {
        let (queue, queued) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(store_batches(store, queued));
        Self { queue }
    }

    /// Stores an order with the others queued with it, unless its caller
    /// stops waiting (this future is dropped, or `deadline` passes) first.
    pub(crate) async fn place(&self, placement: Placement, deadline: Option<Instant>) -> Answer {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((placement, Caller { deadline, answer }))
            .await
            .map_err(|_| Status::unavailable("order-svc is stopping; retry"))?;
        answered
            .await
            .map_err(|_| Status::internal("the order writer stopped before answering"))?
    }
}

async fn store_batches(store: OrderStore, mut queued: mpsc::Receiver<(Placement, Caller)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        store_batch(&store, std::mem::take(&mut batch)).await;
    }
}

/// Stores the orders of `batch` whose callers still wait, and answers
/// every caller.
async fn store_batch(store: &OrderStore, mut batch: Vec<(Placement, Caller)>) {
    loop {
        let (waiting, gone): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(_, caller)| caller.waits());
        for (_, caller) in gone {
            caller.gave_up();
        }
        if waiting.is_empty() {
            return;
        }
        // The batch is worth writing until its last caller's deadline.
        let deadline = waiting
            .iter()
            .map(|(_, caller)| caller.deadline)
            .reduce(|a, b| a.zip(b).map(|(a, b)| a.max(b)))
            .flatten();
        let (placements, callers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        let all_wait = || callers.iter().all(Caller::waits);
        match store.insert_all(placements, deadline, all_wait).await {
            Ok(Batch::Committed(placed)) => {
                for (caller, placed) in callers.into_iter().zip(placed) {
                    // The caller may have gone since the commit; the order
                    // is stored, and a retry with its key finds it.
                    caller.answer.send(Ok(placed)).ok();
                }
                return;
            }
            // Someone stopped waiting: write the rest again without them.
            Ok(Batch::Withdrawn(placements)) => batch = placements.into_iter().zip(callers).collect(),
            Err(WriteError::DeadlinePassed) => {
                for caller in callers {
                    caller.gave_up();
                }
                return;
            }
            Err(error) => {
                let status = Status::from(ServiceError::from(error));
                for caller in callers {
                    caller.answer.send(Err(status.clone())).ok();
                }
                return;
            }
        }
    }
}
