//! Which properties each resource has, and their values.
//!
//! Owns the property catalogue of every kind of resource (root,
//! principals, homes, calendars, objects): live properties computed from
//! the store, stored ones (displayname, description, colour, time zone and
//! any dead property a client set), and which of them PROPPATCH may
//! change. It must never perform I/O: handlers load the records and pass
//! them in.

use tocsin_store::{Access, Calendar, ObjectSummary, Principal, PropName, ShareRow, TOCSIN_NS};

use crate::path::{calendar_href, home_href, principal_href};
use crate::xml::write::{escape, href_xml};
use crate::xml::{APPLE_ICAL, CALDAV, CALSERVER, DAV, Prop, Value};

/// A resource whose properties are asked for.
pub enum Resource<'a> {
    /// `/` or `/dav/`.
    Root,
    /// `/dav/principals/`.
    Principals,
    /// A principal.
    Principal(&'a Principal),
    /// A calendar home.
    Home {
        /// Its owner.
        owner: &'a str,
    },
    /// A calendar collection with its stored properties.
    Calendar {
        /// The calendar.
        calendar: &'a Calendar,
        /// Its stored properties, with this user's own over the shared ones.
        stored: &'a [(PropName, String)],
        /// How it is shared.
        sharing: &'a Sharing,
    },
    /// A calendar object; `ical` is loaded only when calendar-data is asked for.
    Object {
        /// Its metadata.
        summary: &'a ObjectSummary,
        /// Its text, when loaded.
        ical: Option<&'a str>,
        /// The calendar holding it.
        calendar: &'a Calendar,
    },
}

/// A calendar's sharing, as one user sees it.
#[derive(Debug, Clone)]
pub struct Sharing {
    /// The user's access.
    pub access: Access,
    /// Its shares (for the owner's `invite`).
    pub shares: Vec<ShareRow>,
    /// The sync revision as this user sees it.
    pub revision: u64,
}

impl Sharing {
    /// An unshared calendar of its owner, at `revision`.
    pub fn own(revision: u64) -> Self {
        Sharing {
            access: Access::Owner,
            shares: Vec::new(),
            revision,
        }
    }
}

/// What property values depend on besides the resource.
pub struct PropContext<'a> {
    /// The authenticated user.
    pub user: &'a str,
    /// CALDAV:max-resource-size.
    pub object_bytes_max: usize,
}

fn name(ns: &str, local: &str) -> PropName {
    PropName::new(ns, local)
}

/// Properties stored as text (everything else a client sets is kept as XML).
const STORED_TEXT_PROPS: [(&str, &str); 9] = [
    (CALDAV, "default-alarm-vevent-datetime"),
    (TOCSIN_NS, "default-alarms-when-none"),
    (CALDAV, "default-alarm-vevent-date"),
    (DAV, "displayname"),
    (CALDAV, "calendar-description"),
    (CALDAV, "calendar-timezone"),
    (APPLE_ICAL, "calendar-color"),
    (APPLE_ICAL, "calendar-order"),
    (CALDAV, "schedule-calendar-transp"),
];

/// Whether a stored property's value is text (not XML).
pub fn is_text_prop(prop: &PropName) -> bool {
    STORED_TEXT_PROPS
        .iter()
        .any(|(ns, n)| prop.namespace == *ns && prop.name == *n)
}

/// Properties computed by the server, which PROPPATCH may not change.
const PROTECTED: [(&str, &str); 19] = [
    (DAV, "resourcetype"),
    (DAV, "getetag"),
    (DAV, "getcontenttype"),
    (DAV, "getcontentlength"),
    (DAV, "getlastmodified"),
    (DAV, "creationdate"),
    (DAV, "sync-token"),
    (DAV, "owner"),
    (DAV, "current-user-principal"),
    (DAV, "current-user-privilege-set"),
    (DAV, "supported-report-set"),
    (DAV, "principal-URL"),
    (DAV, "principal-collection-set"),
    (CALSERVER, "getctag"),
    (CALDAV, "supported-calendar-component-set"),
    (CALDAV, "supported-calendar-data"),
    (CALDAV, "max-resource-size"),
    (CALDAV, "calendar-home-set"),
    (CALDAV, "calendar-data"),
];

/// Whether `prop` is computed by the server.
pub fn is_protected(prop: &PropName) -> bool {
    PROTECTED
        .iter()
        .any(|(ns, n)| prop.namespace == *ns && prop.name == *n)
}

/// The sync token (and CTag) of a calendar at a revision.
pub fn sync_token(calendar: &Calendar, revision: u64) -> String {
    format!("urn:x-tocsin:sync:{}:{revision}", calendar.id)
}

/// Reads a sync token back: the revision, if it names this calendar.
pub fn parse_sync_token(calendar: &Calendar, token: &str) -> Option<u64> {
    let rest = token.strip_prefix("urn:x-tocsin:sync:")?;
    let (id, revision) = rest.rsplit_once(':')?;
    (id == calendar.id.0).then_some(())?;
    revision.parse().ok()
}

fn privileges(write: bool) -> String {
    let mut xml = String::from(
        "<D:privilege><D:read/></D:privilege><D:privilege><D:read-current-user-privilege-set/></D:privilege><D:privilege><C:read-free-busy/></D:privilege>",
    );
    if write {
        xml.push_str("<D:privilege><D:all/></D:privilege><D:privilege><D:write/></D:privilege><D:privilege><D:write-properties/></D:privilege><D:privilege><D:write-content/></D:privilege><D:privilege><D:bind/></D:privilege><D:privilege><D:unbind/></D:privilege>");
    }
    xml
}

fn reports(names: &[(&str, &str)]) -> String {
    names
        .iter()
        .map(|(prefix, report)| {
            format!(
                "<D:supported-report><D:report><{prefix}:{report}/></D:report></D:supported-report>"
            )
        })
        .collect()
}

const CALENDAR_REPORTS: [(&str, &str); 4] = [
    ("C", "calendar-query"),
    ("C", "calendar-multiget"),
    ("D", "sync-collection"),
    ("C", "free-busy-query"),
];

/// The live properties a resource has, for `propname` and `allprop`.
pub fn live_names(resource: &Resource<'_>) -> Vec<PropName> {
    let common = [
        (DAV, "resourcetype"),
        (DAV, "current-user-principal"),
        (DAV, "current-user-privilege-set"),
    ];
    let specific: &[(&str, &str)] = match resource {
        Resource::Root => &[(DAV, "principal-collection-set")],
        Resource::Principals => &[(DAV, "displayname"), (DAV, "principal-collection-set")],
        Resource::Principal(_) => &[
            (DAV, "displayname"),
            (DAV, "principal-URL"),
            (DAV, "principal-collection-set"),
            (DAV, "owner"),
            (CALDAV, "calendar-home-set"),
            (CALDAV, "calendar-user-address-set"),
            (CALDAV, "calendar-user-type"),
            (CALSERVER, "email-address-set"),
        ],
        Resource::Home { .. } => &[
            (DAV, "displayname"),
            (DAV, "owner"),
            (DAV, "supported-report-set"),
        ],
        Resource::Calendar { .. } => &[
            (DAV, "owner"),
            (DAV, "share-access"),
            (DAV, "invite"),
            (DAV, "supported-report-set"),
            (DAV, "sync-token"),
            (CALSERVER, "getctag"),
            (CALDAV, "supported-calendar-component-set"),
            (CALDAV, "supported-calendar-data"),
            (CALDAV, "max-resource-size"),
        ],
        Resource::Object { .. } => &[
            (DAV, "getetag"),
            (DAV, "getcontenttype"),
            (DAV, "getcontentlength"),
            (DAV, "getlastmodified"),
            (DAV, "creationdate"),
            (DAV, "owner"),
        ],
    };
    let mut names: Vec<PropName> = common
        .iter()
        .chain(specific)
        .map(|(ns, n)| name(ns, n))
        .collect();
    if let Resource::Calendar { stored, .. } = resource {
        names.extend(stored.iter().map(|(n, _)| n.clone()));
    }
    names
}

/// The value of `prop` on `resource`, or `None` when it has none (404).
pub fn value(resource: &Resource<'_>, prop: &PropName, ctx: &PropContext<'_>) -> Option<Value> {
    let me = principal_href(ctx.user);
    let ns = prop.namespace.as_str();
    let local = prop.name.as_str();
    match (ns, local) {
        (DAV, "current-user-principal") => return Some(Value::Xml(href_xml(&me))),
        (DAV, "principal-collection-set") => return Some(Value::Xml(href_xml("/dav/principals/"))),
        _ => {}
    }
    match resource {
        Resource::Root | Resource::Principals => collection_value(resource, ns, local),
        Resource::Principal(principal) => principal_value(principal, ns, local),
        Resource::Home { owner } => home_value(owner, ns, local),
        Resource::Calendar {
            calendar,
            stored,
            sharing,
        } => calendar_value(calendar, stored, sharing, prop, ctx),
        Resource::Object {
            summary,
            ical,
            calendar,
        } => object_value(summary, *ical, calendar, ns, local),
    }
}

fn collection_value(resource: &Resource<'_>, ns: &str, local: &str) -> Option<Value> {
    match (ns, local) {
        (DAV, "resourcetype") => Some(Value::Xml("<D:collection/>".into())),
        (DAV, "current-user-privilege-set") => Some(Value::Xml(privileges(false))),
        (DAV, "displayname") if matches!(resource, Resource::Principals) => {
            Some(Value::Text("Principals".into()))
        }
        _ => None,
    }
}

fn principal_value(principal: &Principal, ns: &str, local: &str) -> Option<Value> {
    let own = principal_href(&principal.name);
    match (ns, local) {
        (DAV, "resourcetype") => Some(Value::Xml("<D:collection/><D:principal/>".into())),
        (DAV, "displayname") => Some(Value::Text(
            principal
                .display_name
                .clone()
                .unwrap_or_else(|| principal.name.clone()),
        )),
        (DAV, "principal-URL") | (DAV, "owner") => Some(Value::Xml(href_xml(&own))),
        (DAV, "current-user-privilege-set") => Some(Value::Xml(privileges(false))),
        (CALDAV, "calendar-home-set") => Some(Value::Xml(href_xml(&home_href(&principal.name)))),
        (CALDAV, "calendar-user-address-set") => {
            let mut xml: String = principal.addresses.iter().map(|a| href_xml(a)).collect();
            xml.push_str(&href_xml(&own));
            Some(Value::Xml(xml))
        }
        (CALDAV, "calendar-user-type") => Some(Value::Text("INDIVIDUAL".into())),
        (CALSERVER, "email-address-set") => Some(Value::Xml(
            principal
                .addresses
                .iter()
                .filter_map(|a| a.strip_prefix("mailto:"))
                .map(|a| format!("<CS:email-address>{}</CS:email-address>", escape(a)))
                .collect(),
        )),
        _ => None,
    }
}

fn home_value(owner: &str, ns: &str, local: &str) -> Option<Value> {
    match (ns, local) {
        (DAV, "resourcetype") => Some(Value::Xml("<D:collection/>".into())),
        (DAV, "displayname") => Some(Value::Text(format!("{owner}'s calendars"))),
        (DAV, "owner") => Some(Value::Xml(href_xml(&principal_href(owner)))),
        (DAV, "current-user-privilege-set") => Some(Value::Xml(privileges(true))),
        (DAV, "supported-report-set") => Some(Value::Xml(String::new())),
        _ => None,
    }
}

fn share_access_xml(sharing: &Sharing) -> String {
    let value = match sharing.access {
        Access::Owner if sharing.shares.is_empty() => "not-shared",
        Access::Owner => "shared-owner",
        Access::Read => "read",
        Access::ReadWrite => "read-write",
    };
    format!("<D:{value}/>")
}

fn invite_xml(sharing: &Sharing) -> String {
    sharing
        .shares
        .iter()
        .map(|share| {
            let access = match share.access {
                Access::ReadWrite => "read-write",
                _ => "read",
            };
            format!(
                "<D:sharee>{}<D:share-access><D:{access}/></D:share-access><D:invite-accepted/></D:sharee>",
                href_xml(&principal_href(&share.sharee))
            )
        })
        .collect()
}

fn calendar_value(
    calendar: &Calendar,
    stored: &[(PropName, String)],
    sharing: &Sharing,
    prop: &PropName,
    ctx: &PropContext<'_>,
) -> Option<Value> {
    let token = || sync_token(calendar, sharing.revision);
    let live = match (prop.namespace.as_str(), prop.name.as_str()) {
        (DAV, "resourcetype") => Some(Value::Xml("<D:collection/><C:calendar/>".into())),
        (DAV, "owner") => Some(Value::Xml(href_xml(&principal_href(&calendar.owner)))),
        (DAV, "current-user-privilege-set") => {
            Some(Value::Xml(privileges(sharing.access.can_write())))
        }
        (DAV, "share-access") => Some(Value::Xml(share_access_xml(sharing))),
        (DAV, "invite") if sharing.access == Access::Owner => Some(Value::Xml(invite_xml(sharing))),
        (DAV, "sharer-resource-uri") if sharing.access != Access::Owner => Some(Value::Xml(
            href_xml(&calendar_href(&calendar.owner, &calendar.slug)),
        )),
        (DAV, "supported-report-set") => Some(Value::Xml(reports(&CALENDAR_REPORTS))),
        (DAV, "sync-token") | (CALSERVER, "getctag") => Some(Value::Text(token())),
        (CALDAV, "supported-calendar-component-set") => Some(Value::Xml(
            calendar
                .components
                .iter()
                .map(|c| format!("<C:comp name=\"{}\"/>", escape(c)))
                .collect(),
        )),
        (CALDAV, "supported-calendar-data") => Some(Value::Xml(
            "<C:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>".into(),
        )),
        (CALDAV, "max-resource-size") => Some(Value::Text(ctx.object_bytes_max.to_string())),
        _ => None,
    };
    live.or_else(|| {
        stored.iter().find(|(n, _)| n == prop).map(|(n, v)| {
            if is_text_prop(n) {
                Value::Text(v.clone())
            } else {
                Value::Xml(v.clone())
            }
        })
    })
}

fn object_value(
    summary: &ObjectSummary,
    ical: Option<&str>,
    calendar: &Calendar,
    ns: &str,
    local: &str,
) -> Option<Value> {
    match (ns, local) {
        (DAV, "resourcetype") => Some(Value::Empty),
        (DAV, "getetag") => Some(Value::Text(quoted_etag(&summary.etag))),
        (DAV, "getcontenttype") => Some(Value::Text(content_type(&summary.kind))),
        (DAV, "getcontentlength") => Some(Value::Text(summary.size.to_string())),
        (DAV, "getlastmodified") => Some(Value::Text(http_date(summary.modified))),
        (DAV, "creationdate") => Some(Value::Text(summary.created.to_rfc3339())),
        (DAV, "owner") => Some(Value::Xml(href_xml(&principal_href(&calendar.owner)))),
        (DAV, "current-user-privilege-set") => Some(Value::Xml(privileges(true))),
        (CALDAV, "calendar-data") => ical.map(|t| Value::Text(t.to_owned())),
        _ => None,
    }
}

/// A strong ETag as it appears in headers and properties.
pub fn quoted_etag(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The content type of an object of component type `kind`.
pub fn content_type(kind: &str) -> String {
    format!(
        "text/calendar; charset=utf-8; component={}",
        kind.to_ascii_lowercase()
    )
}

/// An instant as an HTTP date (RFC 9110).
pub fn http_date(at: tocsin_calendar::Instant) -> String {
    let millis = u64::try_from(at.millis()).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis))
}

/// The properties requested of `resource`, split by status.
pub fn lookup(
    resource: &Resource<'_>,
    names: &[PropName],
    ctx: &PropContext<'_>,
) -> (Vec<Prop>, Vec<Prop>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for prop in names {
        match value(resource, prop, ctx) {
            Some(value) => found.push(Prop {
                name: prop.clone(),
                value,
            }),
            None => missing.push(Prop::empty(prop.clone())),
        }
    }
    (found, missing)
}

/// The href of a calendar (for responses about it).
pub fn href_of_calendar(calendar: &Calendar) -> String {
    calendar_href(&calendar.owner, &calendar.slug)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_calendar::Instant;
    use tocsin_store::CalendarId;

    fn calendar() -> Calendar {
        Calendar {
            id: CalendarId("c1".into()),
            owner: "alice".into(),
            slug: "work".into(),
            components: vec!["VEVENT".into()],
            revision: 42,
            created: Instant::from_millis(0),
            updated: Instant::from_millis(0),
        }
    }

    #[test]
    fn sync_tokens_name_their_calendar() {
        let c = calendar();
        let token = sync_token(&c, 7);
        assert_eq!(parse_sync_token(&c, &token), Some(7));
        let mut other = calendar();
        other.id = CalendarId("c2".into());
        assert_eq!(parse_sync_token(&other, &token), None);
        assert_eq!(parse_sync_token(&c, "http://example.com/1"), None);
    }

    #[test]
    fn stored_text_properties_come_back_as_text_and_others_as_xml() {
        let c = calendar();
        let stored = vec![
            (PropName::new(DAV, "displayname"), "Work & play".to_owned()),
            (
                PropName::new("urn:x", "y"),
                "<t:z xmlns:t=\"urn:x\">1</t:z>".to_owned(),
            ),
        ];
        let sharing = Sharing::own(c.revision);
        let resource = Resource::Calendar {
            calendar: &c,
            stored: &stored,
            sharing: &sharing,
        };
        let ctx = PropContext {
            user: "alice",
            object_bytes_max: 10,
        };
        assert_eq!(
            value(&resource, &PropName::new(DAV, "displayname"), &ctx),
            Some(Value::Text("Work & play".into()))
        );
        assert!(matches!(
            value(&resource, &PropName::new("urn:x", "y"), &ctx),
            Some(Value::Xml(_))
        ));
        assert_eq!(value(&resource, &PropName::new(DAV, "nope"), &ctx), None);
        assert_eq!(
            value(&resource, &PropName::new(CALDAV, "max-resource-size"), &ctx),
            Some(Value::Text("10".into()))
        );
    }

    #[test]
    fn protected_properties_are_known() {
        assert!(is_protected(&PropName::new(DAV, "getetag")));
        assert!(is_protected(&PropName::new(
            CALDAV,
            "supported-calendar-component-set"
        )));
        assert!(!is_protected(&PropName::new(DAV, "displayname")));
    }
}
