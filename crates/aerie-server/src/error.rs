//! The one place errors become HTTP responses: `{"error": {"code", "message", "details"}}`
//! with a fitting status.

use aerie_api_types::{ErrorBody, ErrorDetail};
use aerie_blob::BlobError;
use aerie_core::package::PackageError;
use aerie_core::signature::SignatureError;
use aerie_db::DbError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The message.
    pub message: String,
    /// Structured details.
    pub details: Option<serde_json::Value>,
    /// When to try again, sent as `Retry-After` (whole seconds, at least one).
    pub retry_after: Option<std::time::Duration>,
}

/// A JSON body or answer: axum's `Json`, whose rejections (no JSON content type, malformed
/// JSON, a field of the wrong type) answer in the error envelope like every other error. A
/// body is a JSON object: serde would otherwise read a struct from an array of its fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(Object(value)) =
            axum::Json::<Object<T>>::from_request(request, state).await?;
        Ok(Json(value))
    }
}

/// `T` read from a JSON object only.
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A path's parameters: axum's `Path`, whose rejections (a segment that is not the number or
/// name expected) answer in the error envelope like every other failure.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A query string: axum's `Query`, whose rejections (a parameter of the wrong type, like
/// `page=abc` or `certified=maybe`) answer in the error envelope like every other failure.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        match rejection {
            PathRejection::FailedToDeserializePathParams(err) => ApiError::bad_request(
                "invalid_path_parameter",
                format!("a path parameter is not valid: {}", err.body_text()),
            ),
            // A route whose pattern does not give what its handler takes: a bug here.
            other => ApiError::internal(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        let text = rejection.body_text();
        let detail = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        ApiError::bad_request(
            "invalid_query",
            format!("a query parameter is not valid: {detail}"),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let code = match &rejection {
            JsonRejection::JsonDataError(_) => "invalid_body",
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::MissingJsonContentType(_) => "json_content_type_required",
            _ => "unreadable_body",
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// Asks the client to wait `wait` before trying again (`Retry-After`).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> ApiError {
        self.retry_after = Some(wait);
        self
    }

    /// 429: over a rate limit; try again after `wait`.
    pub fn too_many(
        code: &'static str,
        message: impl Into<String>,
        wait: std::time::Duration,
    ) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).with_retry_after(wait)
    }

    /// 503: the server cannot take this now; try again after `wait`.
    pub fn busy(
        code: &'static str,
        message: impl Into<String>,
        wait: std::time::Duration,
    ) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message).with_retry_after(wait)
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403: valid credentials, not allowed.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed, but the content is refused.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500, logged with its cause; the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the problem is in its log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_seconds(wait)),
            );
        }
        response
    }
}

/// `wait` as `Retry-After` seconds: rounded up, at least one.
pub fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The code of a change refused because the space changed after it was planned (on another
/// replica): planned again from the new state, it may go through.
pub const SPACE_CHANGED: &str = "space_changed";

impl From<DbError> for ApiError {
    fn from(err: DbError) -> ApiError {
        match err {
            DbError::NotFound(what) => {
                ApiError::not_found("not_found", format!("{what} not found"))
            }
            DbError::Conflict(message) => ApiError::conflict("conflict", message),
            err @ DbError::SpaceChanged(_) => ApiError::conflict(SPACE_CHANGED, err.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(err: BlobError) -> ApiError {
        ApiError::internal(err)
    }
}

impl From<PackageError> for ApiError {
    fn from(err: PackageError) -> ApiError {
        let code = err.code();
        let status = match err {
            PackageError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let details = match &err {
            PackageError::Manifest(manifest) => Some(serde_json::json!({
                "problems": manifest.problems,
            })),
            _ => None,
        };
        ApiError {
            status,
            code,
            message: err.to_string(),
            details,
            retry_after: None,
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(err: SignatureError) -> ApiError {
        ApiError::unprocessable(err.code(), err.to_string())
    }
}
