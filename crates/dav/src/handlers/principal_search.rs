//! Principal searches (RFC 3744 §9.4–9.5): `principal-property-search`
//! and `principal-search-property-set`, which clients use to look up
//! attendees and sharees.
//!
//! Searches match, case-insensitively, a substring of a principal's display
//! name, name or calendar-user addresses; at most
//! [`PRINCIPAL_SEARCH_RESULTS_MAX`] principals are returned.

use axum::http::StatusCode;
use axum::response::Response;
use tocsin_store::Principal;

use super::propfind::{multistatus_response, respond};
use super::{PropRequest, prop_names};
use crate::Ctx;
use crate::error::{DavError, DavResult};
use crate::path::principal_href;
use crate::props::{PropContext, Resource};
use crate::xml::write::escape;
use crate::xml::{CALDAV, CALSERVER, DAV, Element, Multistatus};

/// Most principals one search returns.
pub(crate) const PRINCIPAL_SEARCH_RESULTS_MAX: usize = 100;

/// The properties a search may match on.
const SEARCHABLE: [(&str, &str, &str); 3] = [
    (DAV, "displayname", "Display name"),
    (
        CALDAV,
        "calendar-user-address-set",
        "Calendar user addresses",
    ),
    (CALSERVER, "email-address-set", "Email addresses"),
];

/// One `property-search`: which properties, which text.
struct Criterion {
    props: Vec<(String, String)>,
    text: String,
}

fn criteria(root: &Element) -> Vec<Criterion> {
    root.children_named(DAV, "property-search")
        .map(|search| Criterion {
            props: search
                .child(DAV, "prop")
                .map(|p| {
                    p.children
                        .iter()
                        .map(|c| (c.ns.clone(), c.name.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            text: search
                .child(DAV, "match")
                .map(|m| m.text_trimmed().to_lowercase())
                .unwrap_or_default(),
        })
        .collect()
}

fn field_values(principal: &Principal, ns: &str, name: &str) -> Vec<String> {
    match (ns, name) {
        (DAV, "displayname") => vec![
            principal.display_name.clone().unwrap_or_default(),
            principal.name.clone(),
        ],
        (CALDAV, "calendar-user-address-set") | (CALSERVER, "email-address-set") => {
            principal.addresses.clone()
        }
        _ => Vec::new(),
    }
}

fn matches(principal: &Principal, criterion: &Criterion) -> bool {
    criterion.props.iter().any(|(ns, name)| {
        field_values(principal, ns, name)
            .iter()
            .any(|v| v.to_lowercase().contains(&criterion.text))
    })
}

/// The properties to return: the children of `prop`, and — because some
/// clients (the python caldav library among them) put them beside an
/// empty `prop` instead of inside it — any other element directly under
/// the search.
fn requested_props(root: &Element) -> Vec<tocsin_store::PropName> {
    let mut names = root.child(DAV, "prop").map(prop_names).unwrap_or_default();
    for child in &root.children {
        let structural = child.ns == DAV
            && matches!(
                child.name.as_str(),
                "prop" | "property-search" | "apply-to-principal-collection-set"
            );
        if !structural {
            names.push(tocsin_store::PropName::new(
                child.ns.clone(),
                child.name.clone(),
            ));
        }
    }
    names
}

pub(crate) fn principal_property_search(ctx: &Ctx, root: &Element) -> DavResult<Response> {
    let criteria = criteria(root);
    let any_of = root
        .attr("test")
        .is_some_and(|t| t.eq_ignore_ascii_case("anyof"));
    let wanted = PropRequest::Prop(requested_props(root));
    let principals = ctx.state.reader().read(|q| q.principals())?;
    let pctx = PropContext {
        user: &ctx.user.name,
        object_bytes_max: ctx.state.config().calendar.object_bytes_max,
    };
    let mut ms = Multistatus::new();
    let found = principals.iter().filter(|p| {
        criteria.is_empty()
            || if any_of {
                criteria.iter().any(|c| matches(p, c))
            } else {
                criteria.iter().all(|c| matches(p, c))
            }
    });
    for principal in found.take(PRINCIPAL_SEARCH_RESULTS_MAX) {
        respond(
            &mut ms,
            &principal_href(&principal.name),
            &Resource::Principal(principal),
            &wanted,
            &pctx,
        );
    }
    Ok(multistatus_response(ms.finish()))
}

pub(crate) fn principal_search_property_set() -> DavResult<Response> {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><D:principal-search-property-set xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">"#,
    );
    for (ns, name, description) in SEARCHABLE {
        let prefix = match ns {
            DAV => "D",
            CALDAV => "C",
            _ => "CS",
        };
        body.push_str(&format!(
            "<D:principal-search-property><D:prop><{prefix}:{name}/></D:prop><D:description xml:lang=\"en\">{}</D:description></D:principal-search-property>",
            escape(description)
        ));
    }
    body.push_str("</D:principal-search-property-set>");
    let mut response = axum::response::IntoResponse::into_response((StatusCode::OK, body));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(response)
}

/// Principal searches are answered on the root and the principal collection.
pub(crate) fn check_target(target: &crate::path::Target) -> DavResult<()> {
    use crate::path::Target;
    match target {
        Target::Root | Target::DavRoot | Target::Principals | Target::Principal(_) => Ok(()),
        _ => Err(DavError::forbidden(
            "principal searches are answered on /dav/principals/",
        )),
    }
}
