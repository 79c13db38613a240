//! Package downloads, by version and by digest: the hot path.
//!
//! A download costs no database write (counts are kept in memory and flushed in the
//! background), and package bytes come from memory once read. Responses are immutable and
//! cacheable: the ETag is the digest, and single byte ranges are served.

use crate::error::Path;
use aerie_api_types::ErrorBody;
use aerie_core::digest::Digest;
use aerie_core::range::{RangeRequest, parse_range};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::routes::namespaces::visible_namespace;
use crate::state::{AppState, Download};

/// Downloads a version's package.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/{version}/download", tag = "downloads",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path),
        ("range" = Option<String>, Header, description = "One byte range, like bytes=0-1023")),
    responses((status = 200, description = "The package", content_type = "application/gzip"),
        (status = 206, description = "Part of the package"), (status = 304),
        (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn by_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let download = match state.download(&namespace, &name, &version).await? {
        Some(download) => download,
        // Say what is missing, the same way whether hidden or absent.
        None => {
            visible_namespace(&state, &caller, &namespace, Scope::Download).await?;
            return Err(ApiError::not_found(
                "version_not_found",
                format!("{namespace}/{name} has no version {version}"),
            ));
        }
    };
    if !caller
        .can_see(&state, &download.namespace, Scope::Download)
        .await?
    {
        return Err(ApiError::not_found(
            "namespace_not_found",
            format!("there is no namespace `{namespace}`"),
        ));
    }
    serve(&state, &download, &headers).await
}

/// Downloads a package by its digest: an immutable URL.
#[utoipa::path(get, path = "/api/v1/blobs/{digest}", tag = "downloads",
    params(("digest" = String, Path, description = "sha256:...", pattern = "^sha256:[0-9a-f]{64}$")),
    responses((status = 200, description = "The package", content_type = "application/gzip"),
        (status = 206, description = "Part of the package"), (status = 304),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn by_digest(
    State(state): State<AppState>,
    caller: Caller,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let parsed: Digest = digest
        .parse()
        .map_err(|err: aerie_core::digest::DigestParseError| {
            ApiError::bad_request("invalid_digest", err.to_string())
        })?;
    let not_found = || {
        ApiError::not_found(
            "blob_not_found",
            format!("no package has the digest {parsed}"),
        )
    };
    let download = state
        .download_by_digest(&parsed)
        .await?
        .ok_or_else(not_found)?;
    // A blob is visible exactly when its version is.
    if !caller
        .can_see(&state, &download.namespace, Scope::Download)
        .await?
    {
        return Err(not_found());
    }
    serve(&state, &download, &headers).await
}

async fn serve(state: &AppState, download: &Download, headers: &HeaderMap) -> ApiResult<Response> {
    // Room for the download's own headers and those the layers add (rate limits, request id).
    let mut response_headers = HeaderMap::with_capacity(16);
    response_headers.insert(ETAG, download.etag.clone());
    // A private namespace's package is for its members only: no shared cache may keep it,
    // and a browser's cache keeps it per credential.
    if download.namespace.private {
        response_headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        );
        response_headers.insert(
            axum::http::header::VARY,
            HeaderValue::from_static("Authorization, Cookie"),
        );
    } else {
        response_headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response_headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(candidates) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let etag = download.etag.as_bytes();
        let matches = candidates.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || candidate.trim_start_matches("W/").as_bytes() == etag
        });
        if matches {
            return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
        }
    }
    response_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    response_headers.insert(CONTENT_DISPOSITION, download.disposition.clone());
    let bytes: Bytes = state.blob(&download.digest).await?;
    let size = bytes.len() as u64;
    let range = headers.get(RANGE).and_then(|v| v.to_str().ok());
    match range.map(|text| parse_range(text, size)) {
        None | Some(RangeRequest::Ignored) => {
            state.downloads.count(download.version_id);
            response_headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
            Ok((StatusCode::OK, response_headers, Body::from(bytes)).into_response())
        }
        Some(RangeRequest::Unsatisfiable) => {
            let content_range =
                HeaderValue::try_from(format!("bytes */{size}")).map_err(ApiError::internal)?;
            response_headers.insert(CONTENT_RANGE, content_range);
            let error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the package has {size} bytes"),
            );
            Ok((response_headers, error).into_response())
        }
        Some(RangeRequest::Bytes(start, end)) => {
            // A client resuming from the start counts as a download.
            if start == 0 {
                state.downloads.count(download.version_id);
            }
            let content_range = HeaderValue::try_from(format!("bytes {start}-{end}/{size}"))
                .map_err(ApiError::internal)?;
            response_headers.insert(CONTENT_RANGE, content_range);
            response_headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            let part = bytes.slice(start as usize..=end as usize);
            Ok((
                StatusCode::PARTIAL_CONTENT,
                response_headers,
                Body::from(part),
            )
                .into_response())
        }
    }
}
