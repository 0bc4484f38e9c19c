//! MKCALENDAR (RFC 4791 §5.3.1) and extended MKCOL (RFC 5689): create a
//! calendar in the user's home, with its initial properties.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tocsin_cluster::new_id;
use tocsin_store::{CalendarId, Command, CreateCalendar, Outcome, PropName, Rejection};

use super::proppatch::value_to_store;
use super::require_own;
use crate::error::{Condition, DavError, DavResult};
use crate::path::Target;
use crate::xml::{self, CALDAV, DAV, Element};
use crate::{Ctx, DavRequest};

/// Component types a calendar may be created for.
const COMPONENTS_ALLOWED: [&str; 5] = ["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY"];
/// What a calendar holds when the client does not say.
const COMPONENTS_DEFAULT: [&str; 3] = ["VEVENT", "VTODO", "VJOURNAL"];

pub(crate) async fn mkcalendar(
    ctx: &Ctx,
    target: Target,
    request: &DavRequest,
) -> DavResult<Response> {
    let body = &request.body;
    let props = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        let root = xml::parse(body, &ctx.state.config().xml)?;
        if !root.is(CALDAV, "mkcalendar") {
            return Err(DavError::bad_request("expected a CALDAV:mkcalendar body"));
        }
        set_props(&root)
    };
    create(ctx, target, &props).await
}

pub(crate) async fn mkcol(ctx: &Ctx, target: Target, request: &DavRequest) -> DavResult<Response> {
    let body = &request.body;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DavError::forbidden(
            "only calendar collections can be created here: use MKCALENDAR or an extended MKCOL with a calendar resourcetype",
        ));
    }
    let root = xml::parse(body, &ctx.state.config().xml)?;
    if !root.is(DAV, "mkcol") {
        return Err(DavError::bad_request("expected a DAV:mkcol body"));
    }
    let props = set_props(&root);
    let is_calendar = props
        .iter()
        .find(|p| p.is(DAV, "resourcetype"))
        .is_some_and(|rt| rt.child(CALDAV, "calendar").is_some());
    if !is_calendar {
        return Err(DavError::forbidden(
            "only calendar collections can be created here",
        ));
    }
    create(ctx, target, &props).await
}

/// The property elements inside `set/prop`.
fn set_props(root: &Element) -> Vec<Element> {
    root.children_named(DAV, "set")
        .filter_map(|set| set.child(DAV, "prop"))
        .flat_map(|prop| prop.children.iter().cloned())
        .collect()
}

fn components_of(element: &Element) -> DavResult<Vec<String>> {
    let mut components = Vec::new();
    for comp in element.children_named(CALDAV, "comp") {
        let name = comp.attr("name").unwrap_or("").to_ascii_uppercase();
        if !COMPONENTS_ALLOWED.contains(&name.as_str()) {
            return Err(DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::SupportedCalendarComponent,
                format!("calendars cannot hold {name:?}"),
            ));
        }
        if !components.contains(&name) {
            components.push(name);
        }
    }
    if components.is_empty() {
        return Err(DavError::bad_request(
            "supported-calendar-component-set names no component",
        ));
    }
    Ok(components)
}

async fn create(ctx: &Ctx, target: Target, props: &[Element]) -> DavResult<Response> {
    let Target::Calendar(user, slug) = target else {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::CalendarCollectionLocationOk,
            "calendars are created directly in your calendar home, /dav/calendars/{you}/{name}/",
        ));
    };
    require_own(ctx, &user)?;
    let mut components: Vec<String> = COMPONENTS_DEFAULT.iter().map(|c| (*c).to_owned()).collect();
    let mut stored: Vec<(PropName, String)> = Vec::new();
    for element in props {
        if element.is(DAV, "resourcetype") {
            continue;
        }
        if element.is(CALDAV, "supported-calendar-component-set") {
            components = components_of(element)?;
            continue;
        }
        stored.push(value_to_store(element)?);
    }
    let command = Command::CreateCalendar(CreateCalendar {
        id: CalendarId(new_id()),
        owner: user,
        slug,
        components,
        props: stored,
        at: ctx.state.now(),
    });
    match ctx.state.cluster().propose(command).await? {
        Outcome::Applied { .. } => Ok(StatusCode::CREATED.into_response()),
        Outcome::Rejected(Rejection::AlreadyExists) => Err(DavError::condition(
            StatusCode::METHOD_NOT_ALLOWED,
            Condition::ResourceMustBeNull,
            "a calendar already exists at this URL",
        )),
        Outcome::Rejected(other) => Err(DavError::internal(format!(
            "unexpected rejection {other:?}"
        ))),
    }
}
