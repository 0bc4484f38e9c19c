//! Helpers shared by the integration tests: instants from RFC 3339 and
//! objects from the body of a VCALENDAR.
#![allow(dead_code)]

use tocsin_calendar::*;

/// An instant from RFC 3339 text; panics on a typo in a test.
pub fn at(s: &str) -> Instant {
    Instant::parse_rfc3339(s).unwrap_or_else(|| panic!("bad instant {s}"))
}

/// Wraps `body` (components, `\n` line ends) in a VCALENDAR with CRLF.
pub fn calendar_text(body: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n{}END:VCALENDAR\r\n",
        body.replace('\n', "\r\n")
    )
}

/// Parses `body` wrapped in a VCALENDAR; panics with the error otherwise.
pub fn obj(body: &str) -> CalendarObject {
    let text = calendar_text(body);
    CalendarObject::parse(&text, &Limits::default())
        .unwrap_or_else(|e| panic!("parse: {e}\n{text}"))
}
