//! One handler per method, and what they share: access checks, record
//! lookups, the `Depth` header, property requests.
//!
//! A handler takes the authenticated [`Ctx`], the [`Target`] and the
//! request, and answers with a response or a [`DavError`]. Handlers never
//! write SQL; writes are commands proposed through the cluster.

mod delete;
mod get;
mod mkcol;
mod options;
mod principal_search;
mod propfind;
mod proppatch;
mod put;
mod report;
mod share;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tocsin_store::{Access, Calendar, PropName};

use crate::error::{DavError, DavResult};
use crate::path::Target;
use crate::xml::{DAV, Element};
use crate::{Ctx, DavRequest};

/// The `DAV` header: the compliance classes Tocsin implements.
pub(crate) const DAV_COMPLIANCE: &str = "1, 3, calendar-access, extended-mkcol, resource-sharing";

/// The methods Tocsin answers.
pub(crate) const ALLOWED_METHODS: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, MKCALENDAR, MKCOL, POST";

pub(crate) async fn dispatch(
    ctx: &Ctx,
    method: &str,
    target: Target,
    request: &DavRequest,
) -> DavResult<Response> {
    match method {
        "OPTIONS" => Ok(options::options()),
        "PROPFIND" => propfind::propfind(ctx, target, request).await,
        "PROPPATCH" => proppatch::proppatch(ctx, target, request).await,
        "MKCALENDAR" => mkcol::mkcalendar(ctx, target, request).await,
        "MKCOL" => mkcol::mkcol(ctx, target, request).await,
        "GET" => get::get(ctx, target, &request.headers, true),
        "HEAD" => get::get(ctx, target, &request.headers, false),
        "PUT" => put::put(ctx, target, request).await,
        "DELETE" => delete::delete(ctx, target, &request.headers).await,
        "REPORT" => report::report(ctx, target, request).await,
        "POST" => share::post(ctx, target, request).await,
        other => Err(DavError::method_not_allowed(format!(
            "{other} is not supported; allowed: {ALLOWED_METHODS}"
        ))),
    }
}

/// Refuses access to another user's space. Sharing (a later step) widens
/// this; until then a user reaches only their own principal and calendars.
pub(crate) fn require_own(ctx: &Ctx, owner: &str) -> DavResult<()> {
    if owner == ctx.user.name {
        Ok(())
    } else {
        Err(DavError::condition(
            StatusCode::FORBIDDEN,
            crate::error::Condition::NeedPrivileges,
            "you can reach only your own calendars",
        ))
    }
}

/// A calendar as the requesting user reaches it: their own, or shared
/// with them, at `/dav/calendars/{user}/{slug}/`.
pub(crate) struct CalendarView {
    /// The calendar (its owner may be someone else).
    pub(crate) calendar: Calendar,
    /// What the user may do with it.
    pub(crate) access: Access,
    /// Whose home the path is in (the requesting user).
    pub(crate) user: String,
    /// Its segment there.
    pub(crate) slug: String,
}

impl std::ops::Deref for CalendarView {
    type Target = Calendar;

    fn deref(&self) -> &Calendar {
        &self.calendar
    }
}

impl CalendarView {
    /// The calendar's href as this user reaches it.
    pub(crate) fn href(&self) -> String {
        crate::path::calendar_href(&self.user, &self.slug)
    }

    /// An object's href as this user reaches it.
    pub(crate) fn object_href(&self, name: &str) -> String {
        crate::path::object_href(&self.user, &self.slug, name)
    }

    /// Refuses a change of shared content to a read-only sharee.
    pub(crate) fn require_write(&self) -> DavResult<()> {
        if self.access.can_write() {
            Ok(())
        } else {
            Err(DavError::condition(
                StatusCode::FORBIDDEN,
                crate::error::Condition::NeedPrivileges,
                "this calendar is shared with you read-only",
            ))
        }
    }
}

/// A calendar's properties as `user` sees them — the shared ones with
/// the user's own over them — and its sharing.
pub(crate) fn calendar_properties(
    q: &tocsin_store::Query<'_>,
    calendar: &Calendar,
    access: Access,
    user: &str,
) -> Result<(Vec<(PropName, String)>, crate::props::Sharing), tocsin_store::StoreError> {
    let mut stored = q.calendar_props(&calendar.id)?;
    for (name, value) in q.user_calendar_props(&calendar.id, user)? {
        match stored.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = value,
            None => stored.push((name, value)),
        }
    }
    let sharing = crate::props::Sharing {
        access,
        shares: q.shares_of(&calendar.id)?,
        revision: q.user_revision(calendar, user)?,
    };
    Ok((stored, sharing))
}

/// The calendar at `/dav/calendars/{user}/{slug}/`, or 404.
pub(crate) fn load_calendar(ctx: &Ctx, user: &str, slug: &str) -> DavResult<CalendarView> {
    require_own(ctx, user)?;
    let found = ctx
        .state
        .reader()
        .read(|q| q.calendar_for(user, slug))?
        .ok_or_else(DavError::not_found)?;
    Ok(CalendarView {
        calendar: found.calendar,
        access: found.access,
        user: user.to_owned(),
        slug: found.slug,
    })
}

/// The `Depth` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    Zero,
    One,
    Infinity,
}

pub(crate) fn depth(headers: &HeaderMap, default: Depth) -> DavResult<Depth> {
    match headers
        .get("depth")
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
    {
        None => Ok(default),
        Some(v) if v == "0" => Ok(Depth::Zero),
        Some(v) if v == "1" => Ok(Depth::One),
        Some(v) if v == "infinity" => Ok(Depth::Infinity),
        Some(v) => Err(DavError::bad_request(format!("invalid Depth header {v:?}"))),
    }
}

/// What a PROPFIND (or a REPORT's `prop`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PropRequest {
    /// Every property (plus the named extra ones).
    AllProp(Vec<PropName>),
    /// Names only.
    PropName,
    /// These properties.
    Prop(Vec<PropName>),
}

impl PropRequest {
    /// Reads the `allprop` / `propname` / `prop` child of `parent`; none
    /// of them means `allprop`.
    pub(crate) fn from_parent(parent: &Element) -> PropRequest {
        if parent.child(DAV, "propname").is_some() {
            return PropRequest::PropName;
        }
        if let Some(prop) = parent.child(DAV, "prop") {
            return PropRequest::Prop(prop_names(prop));
        }
        let include = parent
            .child(DAV, "include")
            .map(prop_names)
            .unwrap_or_default();
        PropRequest::AllProp(include)
    }

    pub(crate) fn wants(&self, ns: &str, name: &str) -> bool {
        match self {
            PropRequest::Prop(names) | PropRequest::AllProp(names) => {
                names.iter().any(|n| n.namespace == ns && n.name == name)
            }
            PropRequest::PropName => false,
        }
    }
}

pub(crate) fn prop_names(prop: &Element) -> Vec<PropName> {
    prop.children
        .iter()
        .map(|c| PropName::new(c.ns.clone(), c.name.clone()))
        .collect()
}

/// Whether a header's ETag list matches `etag` (or is `*`).
pub(crate) fn etag_list_matches(value: &str, etag: &str) -> bool {
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}
