//! PROPFIND (RFC 4918 §9.1): properties of a resource and its members.
//!
//! `Depth: infinity` is answered as `Depth: 1`: the deepest collection (a
//! calendar) has no sub-collections, so one level is everything.

use axum::response::Response;
use tocsin_store::{CalendarObject, ObjectSummary, Principal, PropName};

use super::{
    CalendarView, Depth, PropRequest, calendar_properties, depth, load_calendar, require_own,
};
use crate::error::{DavError, DavResult};
use crate::path::{Target, calendar_href, home_href, principal_href};
use crate::props::{self, PropContext, Resource};
use crate::xml::{self, CALDAV, DAV, Multistatus, Prop, PropStat};
use crate::{Ctx, DavRequest};

pub(crate) async fn propfind(
    ctx: &Ctx,
    target: Target,
    request: &DavRequest,
) -> DavResult<Response> {
    let depth = depth(&request.headers, Depth::Infinity)?;
    let body = &request.body;
    let wanted = if body.iter().all(u8::is_ascii_whitespace) {
        PropRequest::AllProp(Vec::new())
    } else {
        let root = xml::parse(body, &ctx.state.config().xml)?;
        if !root.is(DAV, "propfind") {
            return Err(DavError::bad_request("expected a DAV:propfind body"));
        }
        PropRequest::from_parent(&root)
    };
    let mut ms = Multistatus::new();
    let pctx = PropContext {
        user: &ctx.user.name,
        object_bytes_max: ctx.state.config().calendar.object_bytes_max,
    };
    let members = depth != Depth::Zero;
    match target {
        Target::Root | Target::DavRoot => {
            respond(&mut ms, &target.href(), &Resource::Root, &wanted, &pctx);
        }
        Target::Principals => {
            respond(
                &mut ms,
                &target.href(),
                &Resource::Principals,
                &wanted,
                &pctx,
            );
            if members {
                respond(
                    &mut ms,
                    &principal_href(&ctx.user.name),
                    &Resource::Principal(&ctx.user),
                    &wanted,
                    &pctx,
                );
            }
        }
        Target::Principal(user) => {
            let principal = principal_of(ctx, &user)?;
            respond(
                &mut ms,
                &principal_href(&user),
                &Resource::Principal(&principal),
                &wanted,
                &pctx,
            );
        }
        Target::Home(user) => {
            require_own(ctx, &user)?;
            respond(
                &mut ms,
                &home_href(&user),
                &Resource::Home { owner: &user },
                &wanted,
                &pctx,
            );
            if members {
                home_members(ctx, &user, &wanted, &pctx, &mut ms)?;
            }
        }
        Target::Calendar(user, slug) => {
            let calendar = load_calendar(ctx, &user, &slug)?;
            let (stored, sharing) = ctx
                .state
                .reader()
                .read(|q| calendar_properties(q, &calendar, calendar.access, &ctx.user.name))?;
            let resource = Resource::Calendar {
                calendar: &calendar,
                stored: &stored,
                sharing: &sharing,
            };
            respond(&mut ms, &calendar.href(), &resource, &wanted, &pctx);
            if members {
                calendar_members(ctx, &calendar, &wanted, &pctx, &mut ms)?;
            }
        }
        Target::Object(user, slug, name) => {
            let calendar = load_calendar(ctx, &user, &slug)?;
            let object = ctx
                .state
                .reader()
                .read(|q| q.object_for(&calendar.id, &name, &ctx.user.name))?
                .ok_or_else(DavError::not_found)?;
            respond_object(
                &mut ms,
                &calendar,
                &object.summary(),
                Some(&object.ical),
                &wanted,
                &pctx,
            );
        }
        Target::WellKnown => return Err(DavError::not_found()),
    }
    Ok(multistatus_response(ms.finish()))
}

fn principal_of(ctx: &Ctx, user: &str) -> DavResult<Principal> {
    require_own(ctx, user)?;
    Ok(ctx.user.clone())
}

fn home_members(
    ctx: &Ctx,
    user: &str,
    wanted: &PropRequest,
    pctx: &PropContext<'_>,
    ms: &mut Multistatus,
) -> DavResult<()> {
    let calendars = ctx.state.reader().read(|q| {
        let calendars = q.calendars_for(user)?;
        calendars
            .into_iter()
            .map(|c| {
                let (stored, sharing) = calendar_properties(q, &c.calendar, c.access, user)?;
                Ok((c, stored, sharing))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    for (reached, stored, sharing) in &calendars {
        let resource = Resource::Calendar {
            calendar: &reached.calendar,
            stored,
            sharing,
        };
        respond(
            ms,
            &calendar_href(user, &reached.slug),
            &resource,
            wanted,
            pctx,
        );
    }
    Ok(())
}

fn calendar_members(
    ctx: &Ctx,
    calendar: &CalendarView,
    wanted: &PropRequest,
    pctx: &PropContext<'_>,
    ms: &mut Multistatus,
) -> DavResult<()> {
    if wanted.wants(CALDAV, "calendar-data") {
        let objects: Vec<CalendarObject> = ctx
            .state
            .reader()
            .read(|q| q.objects_for(&calendar.id, &ctx.user.name))?;
        for object in &objects {
            respond_object(
                ms,
                calendar,
                &object.summary(),
                Some(&object.ical),
                wanted,
                pctx,
            );
        }
    } else {
        let summaries = ctx
            .state
            .reader()
            .read(|q| q.object_summaries_for(&calendar.id, &ctx.user.name))?;
        for summary in &summaries {
            respond_object(ms, calendar, summary, None, wanted, pctx);
        }
    }
    Ok(())
}

pub(crate) fn respond_object(
    ms: &mut Multistatus,
    calendar: &CalendarView,
    summary: &ObjectSummary,
    ical: Option<&str>,
    wanted: &PropRequest,
    pctx: &PropContext<'_>,
) {
    let resource = Resource::Object {
        summary,
        ical,
        calendar: &calendar.calendar,
    };
    respond(
        ms,
        &calendar.object_href(&summary.href),
        &resource,
        wanted,
        pctx,
    );
}

/// The response for one resource: requested properties, split by status.
pub(crate) fn respond(
    ms: &mut Multistatus,
    href: &str,
    resource: &Resource<'_>,
    wanted: &PropRequest,
    pctx: &PropContext<'_>,
) {
    let propstats = match wanted {
        PropRequest::PropName => vec![PropStat {
            status: 200,
            props: props::live_names(resource)
                .into_iter()
                .map(Prop::empty)
                .collect(),
        }],
        PropRequest::AllProp(include) => {
            let mut names: Vec<PropName> = props::live_names(resource);
            for extra in include {
                if !names.contains(extra) {
                    names.push(extra.clone());
                }
            }
            let (found, _) = props::lookup(resource, &names, pctx);
            vec![PropStat {
                status: 200,
                props: found,
            }]
        }
        PropRequest::Prop(names) => {
            let (found, missing) = props::lookup(resource, names, pctx);
            vec![
                PropStat {
                    status: 200,
                    props: found,
                },
                PropStat {
                    status: 404,
                    props: missing,
                },
            ]
        }
    };
    ms.propstat_response(href, &propstats);
}

pub(crate) fn multistatus_response(body: String) -> Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let mut response = (StatusCode::MULTI_STATUS, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}
