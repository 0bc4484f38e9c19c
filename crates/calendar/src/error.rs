//! The calendar core's typed errors.
//!
//! Owns: `CalendarError`, whose variants map one-to-one onto the CalDAV
//! preconditions the dav crate reports (RFC 4791 §5.3.2.1).
//! Must never: carry HTTP or XML types — the dav crate does that mapping.

use thiserror::Error;

/// Why a text was rejected. Each message names the problem for a person.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    /// Not iCalendar at all, or malformed (CALDAV:valid-calendar-data).
    #[error("not valid iCalendar data: {0}")]
    NotICalendar(String),
    /// iCalendar, but with a value the core cannot use: a bad date, RRULE or
    /// VTIMEZONE (CALDAV:valid-calendar-data).
    #[error("invalid iCalendar data: {0}")]
    InvalidData(String),
    /// Not one calendar object resource: several UIDs, mixed component
    /// types, METHOD, no component (CALDAV:valid-calendar-object-resource).
    #[error("not a single calendar object resource: {0}")]
    NotSingleObject(String),
    /// A component type the server does not store
    /// (CALDAV:supported-calendar-component).
    #[error("unsupported calendar component: {0}")]
    UnsupportedComponent(String),
    /// Over a configured limit (CALDAV:max-resource-size).
    #[error("calendar object too large: {0}")]
    OverLimit(String),
}

/// The CalDAV precondition element that reports an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// CALDAV:valid-calendar-data
    ValidCalendarData,
    /// CALDAV:valid-calendar-object-resource
    ValidCalendarObjectResource,
    /// CALDAV:supported-calendar-component
    SupportedCalendarComponent,
    /// CALDAV:max-resource-size
    MaxResourceSize,
}

impl CalendarError {
    /// The RFC 4791 precondition this error violates.
    pub fn precondition(&self) -> Precondition {
        match self {
            CalendarError::NotICalendar(_) | CalendarError::InvalidData(_) => {
                Precondition::ValidCalendarData
            }
            CalendarError::NotSingleObject(_) => Precondition::ValidCalendarObjectResource,
            CalendarError::UnsupportedComponent(_) => Precondition::SupportedCalendarComponent,
            CalendarError::OverLimit(_) => Precondition::MaxResourceSize,
        }
    }
}
