//! The URL space and what each path names.
//!
//! Owns the mapping between request paths and [`Target`]s, and the hrefs
//! Tocsin writes back (percent-encoded per segment):
//!
//! ```text
//! /                                    root (discovery starts here)
//! /.well-known/caldav                  redirect to /dav/ (RFC 6764)
//! /dav/                                DAV root
//! /dav/principals/                     principal collection
//! /dav/principals/{user}/              a principal
//! /dav/calendars/{user}/               a calendar home
//! /dav/calendars/{user}/{calendar}/    a calendar collection
//! /dav/calendars/{user}/{calendar}/{name}  a calendar object
//! ```
//!
//! It must never look anything up: whether a target exists is the
//! handlers' question.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`
    Root,
    /// `/.well-known/caldav`
    WellKnown,
    /// `/dav/`
    DavRoot,
    /// `/dav/principals/`
    Principals,
    /// `/dav/principals/{user}/`
    Principal(String),
    /// `/dav/calendars/{user}/`
    Home(String),
    /// `/dav/calendars/{user}/{calendar}/`
    Calendar(String, String),
    /// `/dav/calendars/{user}/{calendar}/{name}`
    Object(String, String, String),
}

/// Characters left as they are in a segment (RFC 3986 unreserved plus
/// sub-delims clients commonly use in file names).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'+')
    .remove(b'=');

/// Longest segment accepted (a calendar slug or object name).
pub const SEGMENT_BYTES_MAX: usize = 255;

fn decode(segment: &str) -> Option<String> {
    let decoded = percent_decode_str(segment).decode_utf8().ok()?.into_owned();
    let acceptable = !decoded.is_empty()
        && decoded.len() <= SEGMENT_BYTES_MAX
        && decoded != "."
        && decoded != ".."
        && !decoded.contains('/')
        && !decoded.chars().any(char::is_control);
    acceptable.then_some(decoded)
}

/// Percent-encodes one segment.
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

impl Target {
    /// Parses a request path (without query). `None` for paths outside the
    /// DAV space.
    pub fn parse(path: &str) -> Option<Target> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Some(Target::Root);
        }
        if trimmed == "/.well-known/caldav" {
            return Some(Target::WellKnown);
        }
        let rest = trimmed.strip_prefix("/dav")?;
        let segments: Vec<&str> = rest.split('/').skip(1).collect();
        let decoded: Option<Vec<String>> = segments.iter().map(|s| decode(s)).collect();
        let decoded = decoded?;
        let strs: Vec<&str> = decoded.iter().map(String::as_str).collect();
        match strs.as_slice() {
            [] => Some(Target::DavRoot),
            ["principals"] => Some(Target::Principals),
            ["principals", user] => Some(Target::Principal((*user).to_owned())),
            ["calendars", user] => Some(Target::Home((*user).to_owned())),
            ["calendars", user, calendar] => {
                Some(Target::Calendar((*user).to_owned(), (*calendar).to_owned()))
            }
            ["calendars", user, calendar, name] => Some(Target::Object(
                (*user).to_owned(),
                (*calendar).to_owned(),
                (*name).to_owned(),
            )),
            _ => None,
        }
    }

    /// The user whose space this is, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Target::Principal(u)
            | Target::Home(u)
            | Target::Calendar(u, _)
            | Target::Object(u, _, _) => Some(u),
            _ => None,
        }
    }

    /// The canonical href (collections end with `/`).
    pub fn href(&self) -> String {
        match self {
            Target::Root => "/".to_owned(),
            Target::WellKnown => "/.well-known/caldav".to_owned(),
            Target::DavRoot => "/dav/".to_owned(),
            Target::Principals => "/dav/principals/".to_owned(),
            Target::Principal(u) => principal_href(u),
            Target::Home(u) => home_href(u),
            Target::Calendar(u, c) => calendar_href(u, c),
            Target::Object(u, c, n) => object_href(u, c, n),
        }
    }
}

/// `/dav/principals/{user}/`
pub fn principal_href(user: &str) -> String {
    format!("/dav/principals/{}/", encode(user))
}

/// `/dav/calendars/{user}/`
pub fn home_href(user: &str) -> String {
    format!("/dav/calendars/{}/", encode(user))
}

/// `/dav/calendars/{user}/{calendar}/`
pub fn calendar_href(user: &str, calendar: &str) -> String {
    format!("/dav/calendars/{}/{}/", encode(user), encode(calendar))
}

/// `/dav/calendars/{user}/{calendar}/{name}`
pub fn object_href(user: &str, calendar: &str, name: &str) -> String {
    format!(
        "/dav/calendars/{}/{}/{}",
        encode(user),
        encode(calendar),
        encode(name)
    )
}

/// Resolves an href from a request body (absolute path or full URL) to a
/// target.
pub fn target_of_href(href: &str) -> Option<Target> {
    let path = match href.find("://") {
        Some(scheme_end) => {
            let after = &href[scheme_end + 3..];
            &after[after.find('/').unwrap_or(after.len())..]
        }
        None => href,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Target::parse(if path.is_empty() { "/" } else { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_targets_with_or_without_trailing_slash() {
        assert_eq!(Target::parse("/"), Some(Target::Root));
        assert_eq!(
            Target::parse("/.well-known/caldav/"),
            Some(Target::WellKnown)
        );
        assert_eq!(Target::parse("/dav"), Some(Target::DavRoot));
        assert_eq!(
            Target::parse("/dav/principals/alice/"),
            Some(Target::Principal("alice".into()))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice"),
            Some(Target::Home("alice".into()))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice/work/"),
            Some(Target::Calendar("alice".into(), "work".into()))
        );
        assert_eq!(
            Target::parse("/dav/calendars/alice/work/a%20b.ics"),
            Some(Target::Object(
                "alice".into(),
                "work".into(),
                "a b.ics".into()
            ))
        );
        assert_eq!(Target::parse("/elsewhere"), None);
        assert_eq!(Target::parse("/dav/calendars/a/b/c/d"), None);
    }

    #[test]
    fn traversal_and_encoded_slashes_are_refused() {
        assert_eq!(Target::parse("/dav/calendars/alice/../bob/"), None);
        assert_eq!(Target::parse("/dav/calendars/alice/a%2Fb/"), None);
        assert_eq!(Target::parse("/dav/calendars/alice/%00/"), None);
    }

    #[test]
    fn hrefs_round_trip() {
        let target = Target::Object("al ice".into(), "wörk".into(), "{id}.ics".into());
        assert_eq!(Target::parse(&target.href()), Some(target.clone()));
        assert_eq!(
            target_of_href(&format!("https://h:1{}", target.href())),
            Some(target)
        );
    }
}
