//! The apalis-board web app, built for `/board` (see `api/board-ui/README.md`) and embedded
//! in the binary: the page for every UI route, and its script, WebAssembly and stylesheet.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../board-ui/index.html");

/// `(name, content type, bytes)` of each asset.
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "board.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../board-ui/board.js"),
    ),
    (
        "board_bg.wasm",
        "application/wasm",
        include_bytes!("../../board-ui/board_bg.wasm"),
    ),
    (
        "board.css",
        "text/css; charset=utf-8",
        include_bytes!("../../board-ui/board.css"),
    ),
];

/// A validator per asset (FNV-1a of its bytes), so browsers revalidate instead of
/// downloading the app again.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|(_, _, bytes)| {
            let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("\"{hash:016x}\"")
        })
        .collect()
});

/// The app's page, for `/board` and every route under it (the app routes in the browser).
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

/// One of the app's files.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|(name, ..)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (_, content_type, bytes) = ASSETS[index];
    let etag = &ETAGS[index];
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    response
}
