//! PROPPATCH (RFC 4918 §9.2): set and remove calendar properties, all or
//! nothing.
//!
//! Text properties (displayname, calendar-description, calendar-timezone,
//! calendar-color, calendar-order, …) are stored as text; any other
//! property a client invents is a dead property, stored as XML and
//! returned as it came. Properties the server computes are refused with
//! `DAV:cannot-modify-protected-property`; if any change is refused, none
//! is made (the others answer 424).

use axum::http::StatusCode;
use axum::response::Response;
use tocsin_calendar::Zone;
use tocsin_store::{Command, ObjectReplan, Outcome, PropName, Rejection, calendar_timezone_prop};

use super::load_calendar;
use super::propfind::multistatus_response;
use crate::error::{Condition, DavError, DavResult};
use crate::path::Target;
use crate::props::{is_protected, is_text_prop};
use crate::xml::write::inner_xml;
use crate::xml::{self, CALDAV, DAV, Element, Multistatus, Prop, PropStat};
use crate::{Ctx, DavRequest};

/// Longest stored property value.
pub(crate) const PROPERTY_VALUE_BYTES_MAX: usize = 64 << 10;

/// Checks one property to set and gives the value to store.
pub(crate) fn value_to_store(element: &Element) -> Result<(PropName, String), DavError> {
    let name = PropName::new(element.ns.clone(), element.name.clone());
    if is_protected(&name) || (element.ns == DAV && element.name == "resourcetype") {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::CannotModifyProtectedProperty,
            format!("{} is computed by the server", element.name),
        ));
    }
    let value = if is_text_prop(&name) {
        element.text.clone()
    } else {
        inner_xml(element)
    };
    if value.len() > PROPERTY_VALUE_BYTES_MAX {
        return Err(DavError::forbidden(format!(
            "{} is longer than {PROPERTY_VALUE_BYTES_MAX} bytes",
            element.name
        )));
    }
    if element.ns == CALDAV && element.name == "calendar-timezone" && !value.trim().is_empty() {
        Zone::from_calendar_timezone(&value).map_err(|e| {
            DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::ValidCalendarData,
                format!("calendar-timezone: {e}"),
            )
        })?;
    }
    Ok((name, value))
}

pub(crate) async fn proppatch(
    ctx: &Ctx,
    target: Target,
    request: &DavRequest,
) -> DavResult<Response> {
    let Target::Calendar(user, slug) = target.clone() else {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::CannotModifyProtectedProperty,
            "only calendar collections have properties you can change",
        ));
    };
    let calendar = load_calendar(ctx, &user, &slug)?;
    let body = &request.body;
    let root = xml::parse(body, &ctx.state.config().xml)?;
    if !root.is(DAV, "propertyupdate") {
        return Err(DavError::bad_request("expected a DAV:propertyupdate body"));
    }
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    let mut refused: Vec<(PropName, DavError)> = Vec::new();
    for instruction in &root.children {
        let Some(prop) = instruction.child(DAV, "prop") else {
            continue;
        };
        for element in &prop.children {
            let name = PropName::new(element.ns.clone(), element.name.clone());
            match (instruction.ns.as_str(), instruction.name.as_str()) {
                (DAV, "set") => match value_to_store(element) {
                    Ok(set) => sets.push(set),
                    Err(e) => refused.push((name, e)),
                },
                (DAV, "remove") if is_protected(&name) => refused.push((
                    name,
                    DavError::condition(
                        StatusCode::FORBIDDEN,
                        Condition::CannotModifyProtectedProperty,
                        "protected",
                    ),
                )),
                (DAV, "remove") => removes.push(name),
                _ => {}
            }
        }
    }
    let all: Vec<PropName> = sets
        .iter()
        .map(|(n, _)| n.clone())
        .chain(removes.iter().cloned())
        .collect();
    let mut ms = Multistatus::new();
    if !refused.is_empty() {
        let failed: Vec<Prop> = refused
            .iter()
            .map(|(n, _)| Prop::empty(n.clone()))
            .collect();
        let dependent: Vec<Prop> = all.into_iter().map(Prop::empty).collect();
        ms.propstat_response(
            &target.href(),
            &[
                PropStat {
                    status: 403,
                    props: failed,
                },
                PropStat {
                    status: 424,
                    props: dependent,
                },
            ],
        );
        return Ok(multistatus_response(ms.finish()));
    }
    let zone_changes = sets.iter().any(|(n, _)| *n == calendar_timezone_prop())
        || removes.contains(&calendar_timezone_prop());
    let mut outcome = Outcome::Rejected(Rejection::Stale);
    for _ in 0..PLAN_ATTEMPTS_MAX {
        let replan = if zone_changes {
            replan_in_new_zone(ctx, &calendar, &sets)?
        } else {
            Vec::new()
        };
        let command = Command::PatchCalendar {
            id: calendar.id.clone(),
            set: sets.clone(),
            remove: removes.clone(),
            replan,
            at: ctx.state.now(),
        };
        outcome = ctx.state.cluster().propose(command).await?;
        if outcome != Outcome::Rejected(Rejection::Stale) {
            break;
        }
    }
    match outcome {
        Outcome::Applied { .. } => {
            let props: Vec<Prop> = all.into_iter().map(Prop::empty).collect();
            ms.propstat_response(&target.href(), &[PropStat { status: 200, props }]);
            Ok(multistatus_response(ms.finish()))
        }
        Outcome::Rejected(Rejection::Stale) => Err(DavError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the calendar kept changing while its time zone was being changed; try again",
        )),
        Outcome::Rejected(_) => Err(DavError::not_found()),
    }
}

/// How often a zone change is planned again when objects changed meanwhile.
const PLAN_ATTEMPTS_MAX: usize = 3;

/// Every object's `next_check` in the calendar's new zone: floating and
/// all-day times move with the zone, so their alarms do (invariant 4).
fn replan_in_new_zone(
    ctx: &Ctx,
    calendar: &tocsin_store::Calendar,
    sets: &[(PropName, String)],
) -> DavResult<Vec<ObjectReplan>> {
    let new_zone = match sets.iter().find(|(n, _)| *n == calendar_timezone_prop()) {
        Some((_, text)) if !text.trim().is_empty() => Zone::from_calendar_timezone(text)?,
        _ => Zone::utc(),
    };
    let now = ctx.state.now();
    let policy = ctx.state.config().alarm_policy;
    let limits = tocsin_calendar::Limits {
        object_bytes_max: usize::MAX,
        components_max: usize::MAX,
        properties_max: usize::MAX,
    };
    let replan = ctx.state.reader().read(|q| {
        let mut replan = Vec::new();
        for object in q.objects(&calendar.id)? {
            let next_check = match (
                tocsin_calendar::CalendarObject::parse(&object.ical, &limits),
                q.alarm_inputs(&calendar.id, Some(&object.id))?,
            ) {
                (Ok(parsed), Some(mut inputs)) => {
                    inputs.zone = new_zone.clone();
                    inputs.next_check(&parsed, now, &policy).map(|n| n.at)
                }
                _ => None,
            };
            replan.push(ObjectReplan {
                object_id: object.id,
                etag: object.etag,
                next_check,
            });
        }
        Ok(replan)
    })?;
    Ok(replan)
}
