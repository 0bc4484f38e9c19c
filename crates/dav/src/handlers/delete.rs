//! DELETE of a calendar object or a whole calendar (RFC 4918 §9.6).
//!
//! One command removes the object with its index row, watermarks and
//! per-user data, and cancels its pending deliveries (invariant 3); a
//! calendar goes with everything in it. A sharee deleting a calendar
//! shared with them leaves the share instead.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tocsin_store::{Command, Outcome, Rejection};

use super::load_calendar;
use crate::Ctx;
use crate::error::{DavError, DavResult};
use crate::path::Target;

pub(crate) async fn delete(ctx: &Ctx, target: Target, headers: &HeaderMap) -> DavResult<Response> {
    let at = ctx.state.now();
    let command = match target {
        Target::Object(user, slug, name) => {
            let calendar = load_calendar(ctx, &user, &slug)?;
            let if_match = headers
                .get(header::IF_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .to_owned()
                })
                .filter(|v| v != "*");
            calendar.require_write()?;
            Command::DeleteObject {
                calendar_id: calendar.id.clone(),
                href: name,
                if_match,
                as_user: ctx.user.name.clone(),
                at,
            }
        }
        Target::Calendar(user, slug) => {
            let calendar = load_calendar(ctx, &user, &slug)?;
            if calendar.access == tocsin_store::Access::Owner {
                Command::DeleteCalendar {
                    id: calendar.id.clone(),
                    at,
                }
            } else {
                // A sharee deleting a shared calendar leaves the share:
                // the calendar goes from their home, not from its owner's.
                Command::RevokeShare {
                    calendar_id: calendar.id.clone(),
                    sharee: ctx.user.name.clone(),
                    at,
                }
            }
        }
        _ => {
            return Err(DavError::forbidden(
                "only calendars and calendar objects can be deleted",
            ));
        }
    };
    match ctx.state.cluster().propose(command).await? {
        Outcome::Applied { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        Outcome::Rejected(Rejection::PreconditionFailed) => Err(DavError::new(
            StatusCode::PRECONDITION_FAILED,
            "the resource changed since you read it (If-Match)",
        )),
        Outcome::Rejected(Rejection::NotFound) => Err(DavError::not_found()),
        Outcome::Rejected(other) => Err(DavError::internal(format!(
            "unexpected rejection {other:?}"
        ))),
    }
}
