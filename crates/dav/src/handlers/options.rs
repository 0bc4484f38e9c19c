//! OPTIONS: what the server can do (RFC 4918 §9.1, RFC 4791 §5.1).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ALLOWED_METHODS;

pub(crate) fn options() -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}
