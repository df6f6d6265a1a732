//! The failures a dishpatch service answers with, and their one mapping to
//! gRPC status codes.

use tonic::{Code, Status};

/// A failure of a service call. Client mistakes carry a message a person can
/// act on; store failures are logged here and answered without internals.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed: INVALID_ARGUMENT.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something the request names does not exist: NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// The request would create something that already exists: ALREADY_EXISTS.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the current state refuses it:
    /// FAILED_PRECONDITION.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A downstream service answered with this status; passed on as it is.
    #[error("{}", .0.message())]
    Downstream(Status),
    /// The caller's deadline passed before a write committed: nothing was
    /// written.
    #[error("the caller's deadline passed before the write; nothing was written")]
    DeadlinePassed,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// The store failed while committing: the write may or may not have
    /// been made.
    #[error("store, committing: {0}")]
    CommitFailed(sqlx::Error),
}

impl From<crate::validate::FieldError> for ServiceError {
    fn from(error: crate::validate::FieldError) -> Self {
        Self::InvalidArgument(error.0)
    }
}

impl From<crate::validate::FieldError> for Status {
    fn from(error: crate::validate::FieldError) -> Self {
        Status::invalid_argument(error.0)
    }
}

impl From<crate::store::WriteError> for ServiceError {
    fn from(error: crate::store::WriteError) -> Self {
        match error {
            crate::store::WriteError::DeadlinePassed => Self::DeadlinePassed,
            crate::store::WriteError::Store(error) => Self::Store(error),
            crate::store::WriteError::CommitFailed(error) => Self::CommitFailed(error),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidArgument(message) => Status::invalid_argument(message),
            ServiceError::NotFound(message) => Status::not_found(message),
            ServiceError::AlreadyExists(message) => Status::already_exists(message),
            ServiceError::FailedPrecondition(message) => Status::failed_precondition(message),
            ServiceError::Downstream(status) => status,
            error @ ServiceError::DeadlinePassed => Status::deadline_exceeded(error.to_string()),
            ServiceError::Store(error) => store_status(&error),
            ServiceError::CommitFailed(error) => {
                tracing::error!(%error, "store failure while committing");
                // UNKNOWN, not UNAVAILABLE: a caller must not take it for
                // "nothing happened" and simply send the write again.
                Status::unknown("the store failed while committing: the write may or may not have been made")
            }
        }
    }
}

/// A store failure as a status: contention and lost connections are
/// UNAVAILABLE (worth retrying), anything else INTERNAL.
fn store_status(error: &sqlx::Error) -> Status {
    let retryable = match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_contention(&code)),
        _ => false,
    };
    if retryable {
        tracing::warn!(%error, "store unavailable");
        crate::wire::dependency_unavailable(
            Status::new(Code::Unavailable, "the store is busy or unreachable; retry"),
            "store",
        )
    } else {
        tracing::error!(%error, "store failure");
        Status::internal("internal store error")
    }
}

/// PostgreSQL serialization failure, deadlock and lock-not-available
/// (SQLSTATEs are five characters), or SQLite BUSY/LOCKED (primary codes 5
/// and 6, with their extended codes, which have at most four digits).
fn is_contention(code: &str) -> bool {
    if code.len() == 5 {
        return matches!(code, "40001" | "40P01" | "55P03");
    }
    code.parse::<u32>()
        .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6))
}

/// Whether a store error is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_keep_their_code_and_message() {
        let status = Status::from(ServiceError::NotFound("order ord_1 not found".into()));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "order ord_1 not found");
    }

    #[test]
    fn contention_is_retryable() {
        assert!(is_contention("5"));
        assert!(is_contention("517"));
        assert!(is_contention("40001"));
        assert!(!is_contention("19"));
        assert!(!is_contention("23505"));
        assert_eq!(
            Status::from(ServiceError::Store(sqlx::Error::PoolTimedOut)).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(ServiceError::Store(sqlx::Error::RowNotFound)).code(),
            Code::Internal
        );
    }
}
