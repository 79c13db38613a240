//! The UI's static files, embedded in the binary and served under names that carry a hash of
//! their content (`/static/aerie.3f2a9c1d.css`), so a browser may keep each one forever and a
//! new build's files are new names.

use std::sync::LazyLock;

use aerie_server::error::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// The URL it is served at.
    pub url: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Every embedded file, by its served URL.
pub struct Assets {
    /// The stylesheet.
    pub css: Asset,
    /// The progressive script: instant search and small conveniences, all optional.
    pub js: Asset,
}

fn asset(stem: &str, extension: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let hash = hex::encode(&Sha256::digest(bytes)[..6]);
    Asset {
        url: format!("/static/{stem}.{hash}.{extension}"),
        content_type,
        bytes,
    }
}

/// The embedded files, hashed once.
pub static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets {
    css: asset(
        "aerie",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../static/aerie.css"),
    ),
    js: asset(
        "aerie",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/aerie.js"),
    ),
});

/// `GET /static/{file}`: an embedded file by its hashed name, cached for a year; any other
/// name is not found (an old build's name included, so a stale page never gets new bytes
/// under an old name).
pub async fn serve(Path(file): Path<String>) -> Response {
    let requested = format!("/static/{file}");
    let Some(asset) = [&ASSETS.css, &ASSETS.js]
        .into_iter()
        .find(|asset| asset.url == requested)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}
