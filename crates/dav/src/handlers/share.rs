//! POST of `share-resource` (draft-pot-webdav-resource-sharing): an owner
//! shares a calendar, changes a sharee's access, or stops sharing.
//!
//! The body names sharees (principal URLs or `mailto:` addresses) with
//! `read`, `read-write` or `no-access`. Shares take effect at once (no
//! invitation to accept): the calendar appears in each sharee's home.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tocsin_store::{Access, Outcome, Rejection, ShareAccess};

use super::load_calendar;
use crate::error::{Condition, DavError, DavResult};
use crate::path::Target;
use crate::sharing::{ShareError, plan_share, resolve_sharee};
use crate::xml::{self, DAV};
use crate::{Ctx, DavRequest};

/// Sharees one request may name.
const SHAREES_PER_REQUEST_MAX: usize = 100;

fn access_of(sharee: &xml::Element) -> DavResult<Option<ShareAccess>> {
    let Some(access) = sharee.child(DAV, "share-access") else {
        return Err(DavError::bad_request("a sharee needs a share-access"));
    };
    if access.child(DAV, "read-write").is_some() {
        Ok(Some(ShareAccess::ReadWrite))
    } else if access.child(DAV, "read").is_some() {
        Ok(Some(ShareAccess::Read))
    } else if access.child(DAV, "no-access").is_some() {
        Ok(None)
    } else {
        Err(DavError::bad_request(
            "share-access must be read, read-write or no-access",
        ))
    }
}

fn share_error(e: ShareError) -> DavError {
    match e {
        ShareError::Store(e) => DavError::from(e),
        other => DavError::new(StatusCode::CONFLICT, other.to_string()),
    }
}

pub(crate) async fn post(ctx: &Ctx, target: Target, request: &DavRequest) -> DavResult<Response> {
    let Target::Calendar(user, slug) = target else {
        return Err(DavError::method_not_allowed(
            "POST shares calendar collections",
        ));
    };
    let calendar = load_calendar(ctx, &user, &slug)?;
    if calendar.access != Access::Owner {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::NeedPrivileges,
            "only the owner of a calendar shares it",
        ));
    }
    let root = xml::parse(&request.body, &ctx.state.config().xml)?;
    if !root.is(DAV, "share-resource") {
        return Err(DavError::bad_request("expected a DAV:share-resource body"));
    }
    let sharees: Vec<&xml::Element> = root.children_named(DAV, "sharee").collect();
    if sharees.len() > SHAREES_PER_REQUEST_MAX {
        return Err(DavError::bad_request(format!(
            "at most {SHAREES_PER_REQUEST_MAX} sharees per request"
        )));
    }
    for sharee in sharees {
        let reference = sharee
            .child(DAV, "href")
            .map(|h| h.text_trimmed().to_owned())
            .ok_or_else(|| DavError::bad_request("a sharee needs an href"))?;
        let access = access_of(sharee)?;
        let now = ctx.state.now();
        let command = ctx
            .state
            .reader()
            .read(|q| {
                Ok(resolve_sharee(q, &reference)
                    .and_then(|name| plan_share(q, &calendar.id, &name, access, now)))
            })?
            .map_err(share_error)?;
        match ctx.state.cluster().propose(command).await? {
            Outcome::Applied { .. } | Outcome::Rejected(Rejection::NotFound)
                if access.is_none() => {}
            Outcome::Applied { .. } => {}
            Outcome::Rejected(other) => {
                return Err(DavError::new(
                    StatusCode::CONFLICT,
                    format!("sharing with {reference} failed: {other:?}"),
                ));
            }
        }
    }
    Ok(StatusCode::OK.into_response())
}
