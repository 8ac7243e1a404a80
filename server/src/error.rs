//! Errors as the API returns them: a status, a stable code and one sentence, as JSON. Database
//! failures never show SQL or driver text: they are logged by SQLSTATE and answered 503 (retryable)
//! or 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::wire::ErrorBody;

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The sentence for the caller.
    pub message: String,
    /// For gaps and forks.
    pub expected_seq: Option<u64>,
}

impl ApiError {
    /// An error of `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), expected_seq: None }
    }

    /// 400: the request is not what the API takes.
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    /// 422: well-formed, but a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 503, retryable: the database could not be reached or the transaction must be retried.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", message)
    }

    /// True if retrying the same request may succeed.
    pub fn retryable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retryable = self.retryable();
        let body = ErrorBody { error: self.code.to_string(), message: self.message, expected_seq: self.expected_seq, retryable };
        let mut response = (self.status, Json(body)).into_response();
        if retryable {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        let state = e.code().map(|c| c.code().to_string());
        tracing::warn!(sqlstate = state.as_deref().unwrap_or("none"), closed = e.is_closed(), "database error");
        match state.as_deref() {
            // Serialization failure, deadlock, unique race between two concurrent writers: retry.
            Some("40001" | "40P01" | "23505") => ApiError::unavailable("a concurrent write conflicted; retry the request"),
            // Shutdown, crash, connection failures, too many connections, read-only standby.
            Some(s) if s.starts_with("57") || s.starts_with("08") || s.starts_with("53") || s == "25006" => {
                ApiError::unavailable("the database is unavailable; retry the request")
            }
            Some(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not complete the request"),
            None => ApiError::unavailable("the database connection was lost; retry the request"),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => {
                tracing::warn!(kind = %pool_error_kind(&other), "database pool error");
                ApiError::unavailable("the database is unavailable; retry the request")
            }
        }
    }
}

fn pool_error_kind(e: &deadpool_postgres::PoolError) -> &'static str {
    match e {
        deadpool_postgres::PoolError::Timeout(_) => "timeout",
        deadpool_postgres::PoolError::Closed => "closed",
        deadpool_postgres::PoolError::NoRuntimeSpecified => "no runtime",
        deadpool_postgres::PoolError::PostCreateHook(_) => "post-create hook",
        _ => "backend",
    }
}
