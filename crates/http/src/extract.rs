//! Extractors that answer in the API's error format: axum's `Json`, `Path` and `Query` with
//! their rejections mapped to [`ApiError`], and the request's id and client address.

use std::net::IpAddr;

use axum::extract::rejection::{JsonRejection, MissingJsonContentType};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body. Malformed JSON, wrong types and unknown fields are a 400, a missing
/// content type a 415, a body over the limit a 413.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = <axum::Json<T> as FromRequest<S>>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// An optional JSON body (`Option<Json<T>>`): no body at all is `None`; a body is read as
/// [`Json`] reads it, and a body without a content type is a 415 (never silently ignored).
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(req, state)
                .await
                .map(Some);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(JsonRejection::from(e)))?;
        if bytes.is_empty() {
            Ok(None)
        } else {
            Err(ApiError::from(JsonRejection::from(
                MissingJsonContentType::default(),
            )))
        }
    }
}

/// Path parameters. A malformed id is a 400.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters. A malformed or unknown parameter is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The request id: the client's `x-request-id` when it is a sane one, otherwise a new UUID.
/// Set by the observing middleware, echoed in the response and written to audit rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(pub String);

/// The request id of a request, if the observing middleware ran.
pub(crate) fn request_id(parts: &Parts) -> Option<String> {
    parts.extensions.get::<RequestId>().map(|r| r.0.clone())
}

/// The client's address (behind trusted proxies, the one they forwarded for), when the
/// server was started with connect info (not in tests).
pub(crate) fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<crate::proxy::ClientAddr>()
        .map(|a| a.0)
}

/// The header that makes a money-moving request safe to retry.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `Idempotency-Key` header, if present.
///
/// # Errors
/// 400 `invalid_value` when it is not visible ASCII (the domain checks its length).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::bad_request(
                    "invalid_value",
                    "an idempotency key must have 1 to 255 printable ASCII characters",
                )
            })
        })
        .transpose()
}

/// A body that must be a JSON object: serde would also build a struct from an array
/// (`[]` for a struct of optional fields), which no client means.
#[derive(Debug)]
pub(crate) struct Object<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(D::Error::custom("the body must be a JSON object"));
        }
        serde_json::from_str(raw.get())
            .map(Object)
            .map_err(D::Error::custom)
    }
}
