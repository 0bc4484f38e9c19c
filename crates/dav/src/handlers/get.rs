//! GET and HEAD of a calendar object: the text exactly as it was PUT.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{etag_list_matches, load_calendar};
use crate::Ctx;
use crate::error::{DavError, DavResult};
use crate::path::Target;
use crate::props::{content_type, http_date, quoted_etag};

pub(crate) fn get(
    ctx: &Ctx,
    target: Target,
    headers: &HeaderMap,
    with_body: bool,
) -> DavResult<Response> {
    let Target::Object(user, slug, name) = target else {
        return Err(DavError::method_not_allowed(
            "GET is answered for calendar objects; use PROPFIND or REPORT on collections",
        ));
    };
    let calendar = load_calendar(ctx, &user, &slug)?;
    let object = ctx
        .state
        .reader()
        .read(|q| q.object_for(&calendar.id, &name, &ctx.user.name))?
        .ok_or_else(DavError::not_found)?;
    let etag = quoted_etag(&object.etag);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_list_matches(v, &object.etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else if with_body {
        (StatusCode::OK, object.ical.clone()).into_response()
    } else {
        let mut head = StatusCode::OK.into_response();
        head.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(object.ical.len()));
        head
    };
    let out = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&content_type(&object.kind)) {
        out.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(object.modified)) {
        out.insert(header::LAST_MODIFIED, v);
    }
    Ok(response)
}
