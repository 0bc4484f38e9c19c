//! DAV errors: an HTTP status, the precondition element, a message.
//!
//! Owns how every failure of a DAV request is reported: in the protocol's
//! own terms (RFC 4918 §16 `error` bodies with RFC 4791 preconditions),
//! with a sentence for the person reading a client's log. It must never
//! leak internal detail beyond that sentence.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tocsin_calendar::CalendarError;

use crate::xml::write::error_body;
use crate::xml::{XmlError, write::escape};

/// A precondition or postcondition element (RFC 4918 §16, RFC 4791 §5.3.2.1, RFC 6578).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// CALDAV:valid-calendar-data
    ValidCalendarData,
    /// CALDAV:valid-calendar-object-resource
    ValidCalendarObjectResource,
    /// CALDAV:supported-calendar-component
    SupportedCalendarComponent,
    /// CALDAV:supported-calendar-data
    SupportedCalendarData,
    /// CALDAV:max-resource-size
    MaxResourceSize,
    /// CALDAV:no-uid-conflict, with the href that holds the UID.
    NoUidConflict(String),
    /// CALDAV:calendar-collection-location-ok
    CalendarCollectionLocationOk,
    /// CALDAV:valid-filter
    ValidFilter,
    /// CALDAV:supported-filter
    SupportedFilter,
    /// DAV:resource-must-be-null
    ResourceMustBeNull,
    /// DAV:valid-sync-token
    ValidSyncToken,
    /// DAV:supported-report
    SupportedReport,
    /// DAV:propfind-finite-depth
    PropfindFiniteDepth,
    /// DAV:cannot-modify-protected-property
    CannotModifyProtectedProperty,
    /// DAV:need-privileges
    NeedPrivileges,
    /// DAV:number-of-matches-within-limits
    NumberOfMatchesWithinLimits,
}

impl Condition {
    /// The condition as XML, with the response root's prefixes.
    pub fn xml(&self) -> String {
        let element = match self {
            Condition::ValidCalendarData => "C:valid-calendar-data",
            Condition::ValidCalendarObjectResource => "C:valid-calendar-object-resource",
            Condition::SupportedCalendarComponent => "C:supported-calendar-component",
            Condition::SupportedCalendarData => "C:supported-calendar-data",
            Condition::MaxResourceSize => "C:max-resource-size",
            Condition::NoUidConflict(href) => {
                return format!(
                    "<C:no-uid-conflict><D:href>{}</D:href></C:no-uid-conflict>",
                    escape(href)
                );
            }
            Condition::CalendarCollectionLocationOk => "C:calendar-collection-location-ok",
            Condition::ValidFilter => "C:valid-filter",
            Condition::SupportedFilter => "C:supported-filter",
            Condition::ResourceMustBeNull => "D:resource-must-be-null",
            Condition::ValidSyncToken => "D:valid-sync-token",
            Condition::SupportedReport => "D:supported-report",
            Condition::PropfindFiniteDepth => "D:propfind-finite-depth",
            Condition::CannotModifyProtectedProperty => "D:cannot-modify-protected-property",
            Condition::NeedPrivileges => "D:need-privileges",
            Condition::NumberOfMatchesWithinLimits => "D:number-of-matches-within-limits",
        };
        format!("<{element}/>")
    }
}

/// A failed DAV request.
#[derive(Debug, Clone)]
pub struct DavError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The violated condition, when the protocol names one.
    pub condition: Option<Condition>,
    /// A sentence for a person.
    pub message: String,
}

/// Results of handlers.
pub type DavResult<T> = Result<T, DavError>;

impl DavError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        DavError {
            status,
            condition: None,
            message: message.into(),
        }
    }

    /// An error with a precondition element.
    pub fn condition(status: StatusCode, condition: Condition, message: impl Into<String>) -> Self {
        DavError {
            status,
            condition: Some(condition),
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        DavError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        DavError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 Not Found.
    pub fn not_found() -> Self {
        DavError::new(StatusCode::NOT_FOUND, "no such resource")
    }

    /// 405 Method Not Allowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        DavError::new(StatusCode::METHOD_NOT_ALLOWED, message)
    }

    /// 500, with the detail logged here rather than sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error serving a DAV request");
        DavError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        )
    }

    /// 503: the node cannot commit right now (no leader, shutting down).
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        DavError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server cannot write right now: {detail}"),
        )
    }
}

impl From<tocsin_store::StoreError> for DavError {
    fn from(e: tocsin_store::StoreError) -> Self {
        DavError::internal(e)
    }
}

impl From<XmlError> for DavError {
    fn from(e: XmlError) -> Self {
        DavError::bad_request(format!("request body: {e}"))
    }
}

impl From<tocsin_cluster::ProposeError> for DavError {
    fn from(e: tocsin_cluster::ProposeError) -> Self {
        DavError::unavailable(e)
    }
}

impl From<CalendarError> for DavError {
    fn from(e: CalendarError) -> Self {
        use tocsin_calendar::Precondition as P;
        let condition = match e.precondition() {
            P::ValidCalendarData => Condition::ValidCalendarData,
            P::ValidCalendarObjectResource => Condition::ValidCalendarObjectResource,
            P::SupportedCalendarComponent => Condition::SupportedCalendarComponent,
            P::MaxResourceSize => Condition::MaxResourceSize,
        };
        DavError::condition(StatusCode::FORBIDDEN, condition, e.to_string())
    }
}

impl IntoResponse for DavError {
    fn into_response(self) -> Response {
        let body = match &self.condition {
            Some(condition) => error_body(&condition.xml(), &self.message),
            None => error_body("", &self.message),
        };
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        response
    }
}
