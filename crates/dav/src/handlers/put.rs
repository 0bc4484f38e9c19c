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
use tocsin_calendar::{AlarmOverlay, CalendarObject as ParsedObject};
use tocsin_cluster::new_id;
use tocsin_store::{
    Access, Command, ObjectId, Outcome, Precondition, PutObject, Rejection, TimeBounds, etag_of,
};

use super::{CalendarView, load_calendar};
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
    let write = split_for_writer(ctx, &calendar, &name, text)?;
    let mut outcome = Outcome::Rejected(Rejection::Stale);
    for _ in 0..PLAN_ATTEMPTS_MAX {
        let command = plan(ctx, &calendar, &name, &parsed, &write, &precondition)?;
        outcome = ctx.state.cluster().propose(command).await?;
        if outcome != Outcome::Rejected(Rejection::Stale) {
            break;
        }
    }
    let etag = tocsin_store::view_etag(&write.etag, write.per_user.as_deref());
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
            Condition::NoUidConflict(calendar.object_href(&href)),
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

/// What a write stores: the text as it came, or — on a shared calendar,
/// or by a sharee — the shared part and the writer's own part apart.
pub(crate) struct Write {
    /// The text stored as the object.
    pub(crate) shared: String,
    /// Its ETag.
    pub(crate) etag: String,
    /// The writer's own part, kept apart.
    pub(crate) per_user: Option<String>,
}

/// Splits the writer's own parts (alarms, transparency) out when the
/// calendar keeps them apart, and refuses a read-only sharee any change to
/// the shared part (their own alarms they may always change).
fn split_for_writer(
    ctx: &Ctx,
    calendar: &CalendarView,
    name: &str,
    text: &str,
) -> DavResult<Write> {
    let (shared_with_others, existing) = ctx.state.reader().read(|q| {
        Ok((
            !q.shares_of(&calendar.id)?.is_empty(),
            q.object(&calendar.id, name)?,
        ))
    })?;
    if calendar.access == Access::Owner && !shared_with_others {
        return Ok(Write {
            shared: text.to_owned(),
            etag: etag_of(text),
            per_user: None,
        });
    }
    let (shared, part) = tocsin_calendar::split_per_user(text).ok_or_else(|| {
        DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidCalendarData,
            "components do not nest properly",
        )
    })?;
    let etag = etag_of(&shared);
    let changes_shared_part = existing.is_none_or(|e| e.etag != etag);
    if changes_shared_part {
        calendar.require_write()?;
    }
    Ok(Write {
        shared,
        etag,
        per_user: Some(part),
    })
}

/// Plans the command: the object as stored, its ETag and bounds, and its
/// next alarm check computed from the object itself over every user, in
/// the calendar's zone as it is now (invariants 2–4).
fn plan(
    ctx: &Ctx,
    calendar: &CalendarView,
    name: &str,
    parsed: &ParsedObject,
    write: &Write,
    precondition: &Precondition,
) -> DavResult<Command> {
    let now = ctx.state.now();
    let policy = ctx.state.config().alarm_policy;
    let writer = &ctx.user.name;
    // Alarms are computed on the stored (shared) text, with the writer's
    // own part as their overlay: the owner's view must not gain a
    // sharee's alarms, nor the other way round.
    let stored = match &write.per_user {
        Some(_) => ParsedObject::parse(&write.shared, &ctx.state.config().calendar)?,
        None => parsed.clone(),
    };
    let overlay = match &write.per_user {
        Some(part) => Some(AlarmOverlay::parse(part)?),
        None => None,
    };
    let (next_check, zone_fingerprint) = ctx.state.reader().read(|q| {
        let existing = q.object(&calendar.id, name)?;
        let Some(mut inputs) = q.alarm_inputs(&calendar.id, existing.as_ref().map(|o| &o.id))?
        else {
            return Ok((None, String::new()));
        };
        if let Some(overlay) = overlay {
            with_writer_overlay(q, &mut inputs, writer, overlay)?;
        }
        Ok((
            inputs.next_check(&stored, now, &policy),
            inputs.zone_fingerprint,
        ))
    })?;
    let (start, end) = parsed.time_bounds();
    Ok(Command::PutObject(Box::new(PutObject {
        calendar_id: calendar.id.clone(),
        href: name.to_owned(),
        new_object_id: ObjectId(new_id()),
        uid: parsed.uid().to_owned(),
        kind: parsed.kind().name().to_owned(),
        ical: write.shared.clone(),
        etag: write.etag.clone(),
        bounds: TimeBounds { start, end },
        precondition: precondition.clone(),
        next_check: next_check.map(|n| n.at),
        zone_fingerprint,
        as_user: writer.clone(),
        per_user: write.per_user.clone(),
        at: now,
    })))
}

/// Puts the writer's new part into the alarm inputs (adding them as a
/// subject if they had no part yet).
fn with_writer_overlay(
    q: &tocsin_store::Query<'_>,
    inputs: &mut tocsin_store::AlarmInputs,
    writer: &str,
    overlay: AlarmOverlay,
) -> Result<(), tocsin_store::StoreError> {
    match inputs.subjects.iter_mut().find(|s| s.user == writer) {
        Some(subject) => subject.overlay = Some(overlay),
        None => inputs.subjects.push(tocsin_store::AlarmSubject {
            user: writer.to_owned(),
            addresses: q
                .principal(writer)?
                .map(|p| p.addresses)
                .unwrap_or_default(),
            watermark: None,
            overlay: Some(overlay),
            defaults: None,
        }),
    }
    Ok(())
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
