//! The records the store keeps, as the rest of Tocsin sees them.
//!
//! Owns the typed shapes of rows (principals, calendars, objects, …) and
//! the newtypes for ids. It must never hold SQL: mapping rows to these
//! types is the job of `query.rs` and `apply.rs`.

use serde::{Deserialize, Serialize};
use tocsin_calendar::Instant;

/// A calendar's id, planned by the leader (invariant 2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CalendarId(pub String);

/// A calendar object's id, planned by the leader; stable across edits, so
/// alarm idempotency keys derived from it survive them (invariant 6).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectId(pub String);

impl std::fmt::Display for CalendarId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A WebDAV property name: namespace URI and local name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PropName {
    /// The XML namespace URI (`DAV:`, `urn:ietf:params:xml:ns:caldav`, …).
    pub namespace: String,
    /// The local name.
    pub name: String,
}

impl PropName {
    /// A property name from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        PropName {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// Where a calendar object's instances can fall, in UTC; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeBounds {
    /// No instance starts before this.
    pub start: Option<Instant>,
    /// No instance ends after this.
    pub end: Option<Instant>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Shown by clients.
    pub display_name: Option<String>,
    /// Calendar-user addresses (`mailto:` URIs).
    pub addresses: Vec<String>,
    /// When it was created.
    pub created: Instant,
    /// When it last changed.
    pub updated: Instant,
}

/// A calendar collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// Its id.
    pub id: CalendarId,
    /// The owning principal.
    pub owner: String,
    /// Its URL segment in the owner's calendar home.
    pub slug: String,
    /// Component types it accepts.
    pub components: Vec<String>,
    /// The log index of its last change: its sync token and CTag.
    pub revision: u64,
    /// When it was created.
    pub created: Instant,
    /// When it last changed.
    pub updated: Instant,
}

/// A calendar object resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarObject {
    /// Its id.
    pub id: ObjectId,
    /// The calendar holding it.
    pub calendar_id: CalendarId,
    /// Its name in the calendar.
    pub href: String,
    /// The iCalendar UID.
    pub uid: String,
    /// The component type.
    pub kind: String,
    /// The text as the client sent it.
    pub ical: String,
    /// Strong ETag (without quotes).
    pub etag: String,
    /// The sync revision of its last change.
    pub revision: u64,
    /// When it was created.
    pub created: Instant,
    /// When it last changed.
    pub modified: Instant,
}

impl CalendarObject {
    /// Its metadata.
    pub fn summary(&self) -> ObjectSummary {
        ObjectSummary {
            href: self.href.clone(),
            etag: self.etag.clone(),
            revision: self.revision,
            kind: self.kind.clone(),
            size: self.ical.len() as u64,
            created: self.created,
            modified: self.modified,
        }
    }
}

/// An object's metadata, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSummary {
    /// Its name in the calendar.
    pub href: String,
    /// Strong ETag (without quotes).
    pub etag: String,
    /// The sync revision of its last change.
    pub revision: u64,
    /// The component type.
    pub kind: String,
    /// Bytes of its text.
    pub size: u64,
    /// When it was created.
    pub created: Instant,
    /// When it last changed.
    pub modified: Instant,
}

/// A change reported by sync-collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The object exists with this ETag.
    Present(ObjectSummary),
    /// The object was deleted at this revision.
    Deleted {
        /// Its former name.
        href: String,
        /// The log index of the deletion.
        revision: u64,
    },
}

impl Change {
    /// The revision at which the change happened.
    pub fn revision(&self) -> u64 {
        match self {
            Change::Present(o) => o.revision,
            Change::Deleted { revision, .. } => *revision,
        }
    }
}

/// Row counts, for `tocsin status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Principals.
    pub users: u64,
    /// Calendar collections.
    pub calendars: u64,
    /// Calendar objects.
    pub objects: u64,
    /// Rows of the alarm index.
    pub alarm_index: u64,
    /// Outbox entries not yet delivered or given up.
    pub outbox_pending: u64,
}
