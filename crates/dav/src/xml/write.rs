//! Response bodies: multistatus, errors, property values.
//!
//! Owns the XML Tocsin writes: the fixed namespace prefixes, escaping,
//! and the shapes of RFC 4918 `multistatus` and `error` bodies. Known
//! namespaces get short prefixes declared once on the root; any other
//! namespace (a client's dead property) is declared on its own element.
//! It must never decide which properties a resource has.

use std::fmt::Write;

use tocsin_store::PropName;

use super::tree::Element;

/// `DAV:`
pub const DAV: &str = "DAV:";
/// RFC 4791.
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// Apple's CalendarServer extensions (getctag, …).
pub const CALSERVER: &str = "http://calendarserver.org/ns/";
/// Apple iCal extensions (calendar-color, calendar-order).
pub const APPLE_ICAL: &str = "http://apple.com/ns/ical/";

const KNOWN_PREFIXES: [(&str, &str); 4] = [
    ("D", DAV),
    ("C", CALDAV),
    ("CS", CALSERVER),
    ("A", APPLE_ICAL),
];

const ROOT_NAMESPACES: &str = r#"xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/" xmlns:A="http://apple.com/ns/ical/""#;

/// Escapes text for element content and for attribute values (always
/// written between double quotes): `&`, `<`, `>` and `"`.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn known_prefix(ns: &str) -> Option<&'static str> {
    KNOWN_PREFIXES
        .iter()
        .find(|(_, uri)| *uri == ns)
        .map(|(p, _)| *p)
}

/// An element name ready to write: `D:href`, or `x:name` with the
/// declaration to put on the opening tag.
struct QName<'a> {
    qualified: String,
    declaration: Option<&'a str>,
}

fn qname<'a>(ns: &'a str, name: &str) -> QName<'a> {
    match known_prefix(ns) {
        Some(prefix) => QName {
            qualified: format!("{prefix}:{name}"),
            declaration: None,
        },
        None if ns.is_empty() => QName {
            qualified: name.to_owned(),
            declaration: None,
        },
        None => QName {
            qualified: format!("x:{name}"),
            declaration: Some(ns),
        },
    }
}

fn open_tag(out: &mut String, ns: &str, name: &str, empty: bool) -> String {
    let q = qname(ns, name);
    let _ = write!(out, "<{}", q.qualified);
    if let Some(ns) = q.declaration {
        let _ = write!(out, " xmlns:x=\"{}\"", escape(ns));
    } else if ns.is_empty() {
        out.push_str(" xmlns=\"\"");
    }
    out.push_str(if empty { "/>" } else { ">" });
    q.qualified
}

/// A property's value as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// No content: `<D:resourcetype/>`, or a name in a propname answer.
    Empty,
    /// Text, escaped on output.
    Text(String),
    /// Inner XML already rendered with the root's prefixes (D, C, CS, A)
    /// or with its own declarations.
    Xml(String),
}

/// One property with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    /// Its name.
    pub name: PropName,
    /// Its value.
    pub value: Value,
}

impl Prop {
    /// A text property.
    pub fn text(ns: &str, name: &str, text: impl Into<String>) -> Prop {
        Prop {
            name: PropName::new(ns, name),
            value: Value::Text(text.into()),
        }
    }

    /// A property whose content is pre-rendered XML.
    pub fn xml(ns: &str, name: &str, xml: impl Into<String>) -> Prop {
        Prop {
            name: PropName::new(ns, name),
            value: Value::Xml(xml.into()),
        }
    }

    /// A property with no content.
    pub fn empty(name: PropName) -> Prop {
        Prop {
            name,
            value: Value::Empty,
        }
    }
}

/// Writes one property element.
pub fn write_prop(out: &mut String, prop: &Prop) {
    let (ns, name) = (&prop.name.namespace, &prop.name.name);
    match &prop.value {
        Value::Empty => {
            open_tag(out, ns, name, true);
        }
        Value::Text(text) => {
            let q = open_tag(out, ns, name, false);
            out.push_str(&escape(text));
            let _ = write!(out, "</{q}>");
        }
        Value::Xml(xml) => {
            let q = open_tag(out, ns, name, false);
            out.push_str(xml);
            let _ = write!(out, "</{q}>");
        }
    }
}

/// `<D:href>` with an already percent-encoded path.
pub fn href_xml(href: &str) -> String {
    format!("<D:href>{}</D:href>", escape(href))
}

/// Renders an element's children as inner XML with every namespace
/// declared where it is used, so it can be stored and replayed anywhere.
pub fn inner_xml(element: &Element) -> String {
    let mut out = String::new();
    out.push_str(&escape(&element.text));
    for child in &element.children {
        write_standalone(&mut out, child);
    }
    out
}

fn write_standalone(out: &mut String, element: &Element) {
    let prefix = if element.ns.is_empty() {
        String::new()
    } else {
        "t:".to_owned()
    };
    let _ = write!(out, "<{prefix}{}", element.name);
    if !element.ns.is_empty() {
        let _ = write!(out, " xmlns:t=\"{}\"", escape(&element.ns));
    }
    for (name, value) in &element.attrs {
        let _ = write!(out, " {name}=\"{}\"", escape(value));
    }
    out.push('>');
    out.push_str(&escape(&element.text));
    for child in &element.children {
        write_standalone(out, child);
    }
    let _ = write!(out, "</{prefix}{}>", element.name);
}

/// One `propstat`: properties sharing a status.
#[derive(Debug, Clone, Default)]
pub struct PropStat {
    /// The HTTP status code.
    pub status: u16,
    /// The properties.
    pub props: Vec<Prop>,
}

fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("HTTP/1.1 {status} {reason}")
}

/// A `207 Multi-Status` body under construction.
pub struct Multistatus {
    out: String,
}

impl Default for Multistatus {
    fn default() -> Self {
        Multistatus::new()
    }
}

impl Multistatus {
    /// Starts a body.
    pub fn new() -> Self {
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            r#"<?xml version="1.0" encoding="utf-8"?><D:multistatus {ROOT_NAMESPACES}>"#
        );
        Multistatus { out }
    }

    /// A response with properties grouped by status; empty groups are skipped.
    pub fn propstat_response(&mut self, href: &str, propstats: &[PropStat]) {
        self.out.push_str("<D:response>");
        self.out.push_str(&href_xml(href));
        for propstat in propstats.iter().filter(|p| !p.props.is_empty()) {
            self.out.push_str("<D:propstat><D:prop>");
            for prop in &propstat.props {
                write_prop(&mut self.out, prop);
            }
            let _ = write!(
                self.out,
                "</D:prop><D:status>{}</D:status></D:propstat>",
                status_line(propstat.status)
            );
        }
        self.out.push_str("</D:response>");
    }

    /// A response with a status only (404 for a deleted member, …),
    /// optionally with an error element.
    pub fn status_response(&mut self, href: &str, status: u16, error: Option<&str>) {
        self.out.push_str("<D:response>");
        self.out.push_str(&href_xml(href));
        let _ = write!(self.out, "<D:status>{}</D:status>", status_line(status));
        if let Some(error) = error {
            let _ = write!(self.out, "<D:error>{error}</D:error>");
        }
        self.out.push_str("</D:response>");
    }

    /// The `sync-token` of a sync-collection answer.
    pub fn sync_token(&mut self, token: &str) {
        let _ = write!(self.out, "<D:sync-token>{}</D:sync-token>", escape(token));
    }

    /// The finished body.
    pub fn finish(mut self) -> String {
        self.out.push_str("</D:multistatus>");
        self.out
    }
}

/// An RFC 4918 `error` body: the precondition element and a message.
pub fn error_body(condition_xml: &str, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:error {ROOT_NAMESPACES}>{condition_xml}<D:responsedescription>{}</D:responsedescription></D:error>"#,
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tree::{XmlLimits, parse};

    #[test]
    fn a_multistatus_round_trips_through_the_parser() {
        let mut ms = Multistatus::new();
        ms.propstat_response(
            "/dav/a%20b/",
            &[
                PropStat {
                    status: 200,
                    props: vec![
                        Prop::text(DAV, "displayname", "A & B"),
                        Prop::text("urn:other", "x", "1"),
                    ],
                },
                PropStat {
                    status: 404,
                    props: vec![Prop::empty(PropName::new(CALDAV, "calendar-description"))],
                },
            ],
        );
        ms.status_response("/dav/gone.ics", 404, None);
        ms.sync_token("urn:t:1");
        let body = ms.finish();
        let root = parse(body.as_bytes(), &XmlLimits::default()).unwrap();
        assert!(root.is(DAV, "multistatus"));
        let responses: Vec<_> = root.children_named(DAV, "response").collect();
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].child(DAV, "href").unwrap().text, "/dav/a%20b/");
        let ok = responses[0].children_named(DAV, "propstat").next().unwrap();
        let props = ok.child(DAV, "prop").unwrap();
        assert_eq!(props.child(DAV, "displayname").unwrap().text, "A & B");
        assert_eq!(props.child("urn:other", "x").unwrap().text, "1");
        assert_eq!(root.child(DAV, "sync-token").unwrap().text, "urn:t:1");
    }

    #[test]
    fn inner_xml_keeps_namespaces_when_replayed() {
        let stored = parse(
            br#"<p xmlns="urn:a"><q xmlns="urn:b" k="v">t</q>x</p>"#,
            &XmlLimits::default(),
        )
        .unwrap();
        let inner = inner_xml(&stored);
        let mut out = String::new();
        write_prop(&mut out, &Prop::xml("urn:a", "p", inner));
        let replayed = parse(out.as_bytes(), &XmlLimits::default()).unwrap();
        assert!(replayed.is("urn:a", "p"));
        assert!(replayed.children[0].is("urn:b", "q"));
        assert_eq!(replayed.children[0].attr("k"), Some("v"));
        assert_eq!(replayed.text, "x");
    }
}
