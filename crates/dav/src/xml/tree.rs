//! Request bodies as element trees, parsed within bounds.
//!
//! Owns turning a WebDAV/CalDAV request body into an [`Element`] tree with
//! namespaces resolved. Every body is bounded — bytes by the caller, depth
//! and element count here — and entities are never expanded: a document
//! type declaration is refused outright, and only XML's predefined
//! entities and character references are decoded. It must never interpret
//! what the elements mean; the handlers do.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Bounds on one request body.
#[derive(Debug, Clone, Copy)]
pub struct XmlLimits {
    /// Deepest nesting of elements.
    pub depth_max: usize,
    /// Most elements in one body.
    pub elements_max: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            depth_max: 64,
            elements_max: 100_000,
        }
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A document type declaration: refused so no entity is ever defined.
    #[error("XML document type declarations are not accepted")]
    DocType,
    /// Nested deeper than the limit.
    #[error("XML nested deeper than {0} elements")]
    TooDeep(usize),
    /// More elements than the limit.
    #[error("XML body has more than {0} elements")]
    TooManyElements(usize),
    /// No root element.
    #[error("empty XML body")]
    Empty,
}

/// An element with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI (empty when unbound).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes other than namespace declarations, by local name.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Text directly inside the element, concatenated.
    pub text: String,
}

impl Element {
    /// Whether this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The text content, trimmed.
    pub fn text_trimmed(&self) -> &str {
        self.text.trim()
    }
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

fn resolved_ns(ns: ResolveResult<'_>) -> Result<String, XmlError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(XmlError::Malformed(format!(
            "undeclared namespace prefix {:?}",
            String::from_utf8_lossy(&prefix)
        ))),
    }
}

fn element_of(
    ns: ResolveResult<'_>,
    start: &quick_xml::events::BytesStart<'_>,
) -> Result<Element, XmlError> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(malformed)?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attr.unescape_value().map_err(malformed)?.into_owned();
        attrs.push((
            String::from_utf8_lossy(key.local_name().as_ref()).into_owned(),
            value,
        ));
    }
    Ok(Element {
        ns: resolved_ns(ns)?,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Parses `body` into its root element.
pub fn parse(body: &[u8], limits: &XmlLimits) -> Result<Element, XmlError> {
    let text =
        std::str::from_utf8(body).map_err(|_| XmlError::Malformed("body is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut elements = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        match event {
            Event::Start(start) | Event::Empty(start) if stack.len() >= limits.depth_max => {
                let _ = (ns, start);
                return Err(XmlError::TooDeep(limits.depth_max));
            }
            Event::Start(start) => {
                elements += 1;
                if elements > limits.elements_max {
                    return Err(XmlError::TooManyElements(limits.elements_max));
                }
                stack.push(element_of(ns, &start)?);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > limits.elements_max {
                    return Err(XmlError::TooManyElements(limits.elements_max));
                }
                let element = element_of(ns, &start)?;
                if let Some(done) = close(&mut stack, element) {
                    return Ok(done);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                if let Some(done) = close(&mut stack, element) {
                    return Ok(done);
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(malformed)?;
                append_text(&mut stack, &text)?;
            }
            Event::CData(data) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                append_text(&mut stack, &text)?;
            }
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                return Err(if stack.is_empty() {
                    XmlError::Empty
                } else {
                    malformed("unexpected end of document")
                });
            }
        }
    }
}

/// Attaches a finished element to its parent; returns it when it is the root.
fn close(stack: &mut [Element], element: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(element);
            None
        }
        None => Some(element),
    }
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_default(body: &str) -> Result<Element, XmlError> {
        parse(body.as_bytes(), &XmlLimits::default())
    }

    #[test]
    fn namespaces_are_resolved() {
        let root = parse_default(
            r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns="urn:ietf:params:xml:ns:caldav"><d:prop><calendar-data/></d:prop></d:propfind>"#,
        )
        .unwrap();
        assert!(root.is("DAV:", "propfind"));
        let prop = root.child("DAV:", "prop").unwrap();
        assert!(prop.children[0].is("urn:ietf:params:xml:ns:caldav", "calendar-data"));
    }

    #[test]
    fn a_doctype_is_refused_so_no_entity_is_ever_expanded() {
        let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><d:propfind xmlns:d="DAV:">&lol2;</d:propfind>"#;
        assert_eq!(parse_default(billion_laughs), Err(XmlError::DocType));
    }

    #[test]
    fn an_undefined_entity_is_malformed() {
        assert!(matches!(
            parse_default(r#"<d:a xmlns:d="DAV:">&nope;</d:a>"#),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn predefined_entities_and_character_references_are_decoded() {
        let root = parse_default(r#"<d:a xmlns:d="DAV:">a&amp;b&#x41;</d:a>"#).unwrap();
        assert_eq!(root.text, "a&bA");
    }

    #[test]
    fn depth_and_element_count_are_bounded() {
        let deep = format!("{}{}", "<a>".repeat(70), "</a>".repeat(70));
        assert_eq!(parse_default(&deep), Err(XmlError::TooDeep(64)));
        let wide = format!("<a>{}</a>", "<b/>".repeat(20));
        let limits = XmlLimits {
            depth_max: 8,
            elements_max: 10,
        };
        assert_eq!(
            parse(wide.as_bytes(), &limits),
            Err(XmlError::TooManyElements(10))
        );
    }

    #[test]
    fn malformed_and_empty_bodies_are_errors() {
        assert!(matches!(
            parse_default("<a><b></a>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_default("<x:a/>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(parse_default("   "), Err(XmlError::Empty));
        assert!(parse(b"\xff\xfe", &XmlLimits::default()).is_err());
    }
}
