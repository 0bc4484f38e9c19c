//! PUT of a calendar object (RFC 4791 §5.3.2).
//!
//! Validates the text with the calendar core, checks the collection's
//! component set, and plans one command: the object as received, its
//! strong ETag, its time bounds, and its next alarm check computed from
//! the object itself over every user (invariants 2–4). Conditional headers
//! travel in the command and are checked where the write happens, so two
//! racing writers cannot both win.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tocsin_calendar::CalendarObject as ParsedObject;
use tocsin_cluster::new_id;
use tocsin_store::{Command, ObjectId, Outcome, Precondition, PutObject, Rejection, TimeBounds};

use super::load_calendar;
use crate::error::{Condition, DavError, DavResult};
use crate::path::Target;
use crate::props::quoted_etag;
use crate::{Ctx, DavRequest};

pub(crate) async fn put(ctx: &Ctx, target: Target, request: &DavRequest) -> DavResult<Response> {
    let Target::Object(user, slug, name) = target else {
        return Err(DavError::method_not_allowed(
            "PUT creates calendar objects inside a calendar",
        ));
    };
    let calendar = match load_calendar(ctx, &user, &slug) {
        Ok(calendar) => calendar,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return Err(DavError::new(
                StatusCode::CONFLICT,
                format!("no calendar {slug:?} to put this object in"),
            ));
        }
        Err(e) => return Err(e),
    };
    let headers = &request.headers;
    check_content_type(headers)?;
    let precondition = precondition(headers);
    let limits = ctx.state.config().calendar;
    let body = &request.body;
    if body.len() > limits.object_bytes_max {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::MaxResourceSize,
            format!(
                "calendar object of {} bytes; the limit is {}",
                body.len(),
                limits.object_bytes_max
            ),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| {
        DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidCalendarData,
            "calendar data is not UTF-8",
        )
    })?;
    let parsed = ParsedObject::parse(text, &limits)?;
    let kind = parsed.kind().name();
    if !calendar
        .components
        .iter()
        .any(|c| c.eq_ignore_ascii_case(kind))
    {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::SupportedCalendarComponent,
            format!(
                "this calendar accepts {}, not {kind}",
                calendar.components.join(", ")
            ),
        ));
    }
    let etag = etag_of(text);
    let mut outcome = Outcome::Rejected(Rejection::Stale);
    for _ in 0..PLAN_ATTEMPTS_MAX {
        let command = plan(ctx, &calendar, &name, &parsed, text, &etag, &precondition)?;
        outcome = ctx.state.cluster().propose(command).await?;
        if outcome != Outcome::Rejected(Rejection::Stale) {
            break;
        }
    }
    match outcome {
        Outcome::Applied { created, .. } => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::NO_CONTENT
            };
            let mut response = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&quoted_etag(&etag)) {
                response.headers_mut().insert(header::ETAG, v);
            }
            Ok(response)
        }
        Outcome::Rejected(Rejection::PreconditionFailed) => Err(DavError::new(
            StatusCode::PRECONDITION_FAILED,
            "the resource changed since you read it (If-Match / If-None-Match)",
        )),
        Outcome::Rejected(Rejection::UidConflict { href }) => Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::NoUidConflict(crate::path::object_href(&user, &slug, &href)),
            format!("another object in this calendar ({href}) has the same UID"),
        )),
        Outcome::Rejected(Rejection::NotFound) => Err(DavError::new(
            StatusCode::CONFLICT,
            "the calendar was deleted",
        )),
        Outcome::Rejected(Rejection::Stale) => Err(DavError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the calendar's time zone kept changing during this write; try again",
        )),
        Outcome::Rejected(other) => Err(DavError::internal(format!(
            "unexpected rejection {other:?}"
        ))),
    }
}

/// How often a write is planned again when the calendar's zone changed
/// between planning and commit.
const PLAN_ATTEMPTS_MAX: usize = 3;

/// Plans the command: the object as received, its ETag and bounds, and its
/// next alarm check computed from the object itself over every user, in
/// the calendar's zone as it is now (invariants 2–4).
fn plan(
    ctx: &Ctx,
    calendar: &tocsin_store::Calendar,
    name: &str,
    parsed: &ParsedObject,
    text: &str,
    etag: &str,
    precondition: &Precondition,
) -> DavResult<Command> {
    let now = ctx.state.now();
    let policy = ctx.state.config().alarm_policy;
    let (next_check, zone_fingerprint) = ctx.state.reader().read(|q| {
        let existing = q.object(&calendar.id, name)?;
        let inputs = q.alarm_inputs(&calendar.id, existing.as_ref().map(|o| &o.id))?;
        Ok(match inputs {
            Some(i) => (i.next_check(parsed, now, &policy), i.zone_fingerprint),
            None => (None, String::new()),
        })
    })?;
    let (start, end) = parsed.time_bounds();
    Ok(Command::PutObject(Box::new(PutObject {
        calendar_id: calendar.id.clone(),
        href: name.to_owned(),
        new_object_id: ObjectId(new_id()),
        uid: parsed.uid().to_owned(),
        kind: parsed.kind().name().to_owned(),
        ical: text.to_owned(),
        etag: etag.to_owned(),
        bounds: TimeBounds { start, end },
        precondition: precondition.clone(),
        next_check: next_check.map(|n| n.at),
        zone_fingerprint,
        at: now,
    })))
}

/// The strong ETag of a text: 128 bits of its SHA-256, so equal texts
/// have equal ETags on every node.
pub(crate) fn etag_of(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Clients send `text/calendar` (with parameters), or nothing; anything
/// else is another format (RFC 4791 supported-calendar-data).
fn check_content_type(headers: &HeaderMap) -> DavResult<()> {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "text/calendar" || mime == "application/octet-stream" || mime.is_empty() {
        Ok(())
    } else {
        Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::SupportedCalendarData,
            format!("calendar objects are text/calendar, not {mime}"),
        ))
    }
}

fn precondition(headers: &HeaderMap) -> Precondition {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = text(header::IF_MATCH) {
        if value == "*" {
            return Precondition::IfExists;
        }
        let etag = value
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"');
        return Precondition::IfMatch(etag.to_owned());
    }
    if text(header::IF_NONE_MATCH) == Some("*") {
        return Precondition::IfNoneMatch;
    }
    Precondition::None
}
