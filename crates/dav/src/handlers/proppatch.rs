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
use tocsin_calendar::{DefaultAlarms, Zone};
use tocsin_store::{
    Access, Command, ObjectReplan, Outcome, PropName, Rejection, calendar_timezone_prop,
    default_alarms_from_props, defaults_when_none_prop,
};

use super::propfind::multistatus_response;
use super::{CalendarView, load_calendar};
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
    if name == defaults_when_none_prop() && !["true", "false"].contains(&value.trim()) {
        return Err(DavError::forbidden(format!(
            "{} is `true` or `false`",
            element.name
        )));
    }
    if is_default_alarm(&name) && name != defaults_when_none_prop() && !value.trim().is_empty() {
        DefaultAlarms::parse(Some(&value), None).map_err(|e| {
            DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::ValidCalendarData,
                format!("{}: {e}", element.name),
            )
        })?;
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
    // A sharee's properties, and anyone's default alarms, are their own;
    // the rest belong to the calendar.
    let personal = |name: &PropName| calendar.access != Access::Owner || is_default_alarm(name);
    let (own_sets, shared_sets): (Vec<_>, Vec<_>) =
        sets.into_iter().partition(|(n, _)| personal(n));
    let (own_removes, shared_removes): (Vec<_>, Vec<_>) =
        removes.into_iter().partition(|n| personal(n));
    if !own_sets.is_empty() || !own_removes.is_empty() {
        patch_own(ctx, &calendar, own_sets, own_removes).await?;
    }
    if !shared_sets.is_empty() || !shared_removes.is_empty() {
        patch_shared(ctx, &calendar, shared_sets, shared_removes).await?;
    }
    let props: Vec<Prop> = all.into_iter().map(Prop::empty).collect();
    ms.propstat_response(&target.href(), &[PropStat { status: 200, props }]);
    Ok(multistatus_response(ms.finish()))
}

/// The user's default alarms and their opt-in for events without alarms
/// (set per user, on any calendar they reach).
const DEFAULT_ALARM_PROPS: [&str; 2] =
    ["default-alarm-vevent-datetime", "default-alarm-vevent-date"];

fn is_default_alarm(name: &PropName) -> bool {
    (name.namespace == CALDAV && DEFAULT_ALARM_PROPS.contains(&name.name.as_str()))
        || *name == defaults_when_none_prop()
}

fn stale(what: &str) -> DavError {
    DavError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the calendar kept changing while {what}; try again"),
    )
}

/// Properties of the calendar itself (the owner's).
async fn patch_shared(
    ctx: &Ctx,
    calendar: &CalendarView,
    sets: Vec<(PropName, String)>,
    removes: Vec<PropName>,
) -> DavResult<()> {
    let zone_changes = sets.iter().any(|(n, _)| *n == calendar_timezone_prop())
        || removes.contains(&calendar_timezone_prop());
    for _ in 0..PLAN_ATTEMPTS_MAX {
        let replan = if zone_changes {
            replan_in_new_zone(ctx, calendar, &sets)?
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
        match ctx.state.cluster().propose(command).await? {
            Outcome::Applied { .. } => return Ok(()),
            Outcome::Rejected(Rejection::Stale) => continue,
            Outcome::Rejected(_) => return Err(DavError::not_found()),
        }
    }
    Err(stale("its time zone was being changed"))
}

/// The user's own properties of the calendar; a change of their default
/// alarms re-plans every object (invariant 4).
async fn patch_own(
    ctx: &Ctx,
    calendar: &CalendarView,
    sets: Vec<(PropName, String)>,
    removes: Vec<PropName>,
) -> DavResult<()> {
    let defaults_change =
        sets.iter().any(|(n, _)| is_default_alarm(n)) || removes.iter().any(is_default_alarm);
    for _ in 0..PLAN_ATTEMPTS_MAX {
        let replan = if defaults_change {
            replan_with_defaults(ctx, calendar, &sets, &removes)?
        } else {
            Vec::new()
        };
        let command = Command::PatchUserCalendar {
            calendar_id: calendar.id.clone(),
            user: ctx.user.name.clone(),
            set: sets.clone(),
            remove: removes.clone(),
            replan,
            at: ctx.state.now(),
        };
        match ctx.state.cluster().propose(command).await? {
            Outcome::Applied { .. } => return Ok(()),
            Outcome::Rejected(Rejection::Stale) => continue,
            Outcome::Rejected(_) => return Err(DavError::not_found()),
        }
    }
    Err(stale("your default alarms were being changed"))
}

/// Every object's `next_check` with the user's new default alarms.
fn replan_with_defaults(
    ctx: &Ctx,
    calendar: &CalendarView,
    sets: &[(PropName, String)],
    removes: &[PropName],
) -> DavResult<Vec<ObjectReplan>> {
    let user = &ctx.user.name;
    let now = ctx.state.now();
    let policy = ctx.state.config().alarm_policy;
    let replan = ctx.state.reader().read(|q| {
        let mut props = q.user_calendar_props(&calendar.id, user)?;
        props.retain(|(n, _)| !removes.contains(n) && !sets.iter().any(|(s, _)| s == n));
        props.extend(sets.iter().cloned());
        let defaults = default_alarms_from_props(&props);
        replan_calendar(q, &calendar.id, now, &policy, |q, inputs| {
            with_defaults(q, inputs, user, defaults.clone())
        })
    })?;
    Ok(replan)
}

/// Every object of a calendar planned again, with its alarm inputs
/// changed by `adjust` (new defaults, a new zone). An object that no
/// longer parses, or has no inputs, gets no `next_check`.
fn replan_calendar(
    q: &tocsin_store::Query<'_>,
    calendar_id: &tocsin_store::CalendarId,
    now: tocsin_calendar::Instant,
    policy: &tocsin_calendar::AlarmPolicy,
    adjust: impl Fn(
        &tocsin_store::Query<'_>,
        &mut tocsin_store::AlarmInputs,
    ) -> Result<(), tocsin_store::StoreError>,
) -> Result<Vec<ObjectReplan>, tocsin_store::StoreError> {
    let limits = stored_object_limits();
    let mut replan = Vec::new();
    for object in q.objects(calendar_id)? {
        let next_check = match (
            tocsin_calendar::CalendarObject::parse(&object.ical, &limits),
            q.alarm_inputs(calendar_id, Some(&object.id))?,
        ) {
            (Ok(parsed), Some(mut inputs)) => {
                adjust(q, &mut inputs)?;
                inputs.next_check(&parsed, now, policy).map(|n| n.at)
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
}

/// Sets a user's default alarms in the inputs (adding them as a subject,
/// with no alarms of their own, if they were not one).
fn with_defaults(
    q: &tocsin_store::Query<'_>,
    inputs: &mut tocsin_store::AlarmInputs,
    user: &str,
    defaults: Option<DefaultAlarms>,
) -> Result<(), tocsin_store::StoreError> {
    if let Some(subject) = inputs.subjects.iter_mut().find(|s| s.user == user) {
        subject.defaults = defaults;
        return Ok(());
    }
    inputs.subjects.push(tocsin_store::AlarmSubject {
        user: user.to_owned(),
        addresses: q.principal(user)?.map(|p| p.addresses).unwrap_or_default(),
        watermark: None,
        overlay: None,
        defaults,
    });
    Ok(())
}

fn stored_object_limits() -> tocsin_calendar::Limits {
    tocsin_calendar::Limits {
        object_bytes_max: usize::MAX,
        components_max: usize::MAX,
        properties_max: usize::MAX,
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
    let replan = ctx.state.reader().read(|q| {
        replan_calendar(q, &calendar.id, now, &policy, |_, inputs| {
            inputs.zone = new_zone.clone();
            Ok(())
        })
    })?;
    Ok(replan)
}
