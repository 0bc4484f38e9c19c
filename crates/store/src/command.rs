//! Commands: the only way durable state changes (invariant 1).
//!
//! This module owns the shape of every change that can be written to the
//! store and of its deterministic answer, [`Outcome`]. A command carries
//! everything that depends on the clock, randomness or the node — ids,
//! timestamps, ETags, planned alarm times — because only the leader may
//! compute those (invariant 2). It must never hold anything `apply` would
//! have to look up outside the store.
//!
//! Commands are serialised into the replicated log, so the enum is
//! versioned through [`Envelope`]: variants may be added, never changed.

use serde::{Deserialize, Serialize};
use tocsin_calendar::Instant;

use crate::model::{CalendarId, ObjectId, PropName, TimeBounds};

/// The version of the command encoding this build writes and understands.
pub const COMMAND_FORMAT: u16 = 1;

/// Identifies a calendar time zone value (the calendar-timezone property
/// text, or none): what a planned `next_check` depends on.
pub fn zone_fingerprint(timezone: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    match timezone {
        None => String::new(),
        Some(text) => hex::encode(&Sha256::digest(text.as_bytes())[..16]),
    }
}

/// A strong ETag: 128 bits of the SHA-256 of a text, so equal texts have
/// equal ETags on every node.
pub fn etag_of(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// The ETag of one user's view of an object: the object's own when the
/// user has no per-user part, else one that changes when either the
/// shared part or theirs does (and only then).
pub fn view_etag(object_etag: &str, per_user: Option<&str>) -> String {
    match per_user {
        None => object_etag.to_owned(),
        Some(part) => etag_of(&format!("{object_etag}\0{part}")),
    }
}

/// Commands one log entry may carry: a revision gives each its own
/// position below the entry's log index (see [`revision_of`]).
pub const ENVELOPE_COMMANDS_MAX: usize = 1 << REVISION_POSITION_BITS;

const REVISION_POSITION_BITS: u32 = 16;

/// The sync revision of the command at `position` in the entry at
/// `log_index`: unique per command, increasing in log order, the same on
/// every node (it depends only on the log), so it needs no planning.
pub fn revision_of(log_index: u64, position: usize) -> u64 {
    (log_index << REVISION_POSITION_BITS) | position as u64
}

/// Commands as they travel in one log entry: several proposals committed
/// by one fsync (group commit), applied in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The encoding version, [`COMMAND_FORMAT`] when written by this build.
    pub format: u16,
    /// The changes, in the order they apply; at most [`ENVELOPE_COMMANDS_MAX`].
    pub commands: Vec<Command>,
}

impl Envelope {
    /// Wraps commands in the current format.
    pub fn new(commands: Vec<Command>) -> Self {
        Envelope {
            format: COMMAND_FORMAT,
            commands,
        }
    }

    /// Refuses an entry this build cannot apply: applying part of it would
    /// let this node diverge from newer ones, so the node must stop.
    pub fn check_format(&self) -> Result<(), crate::StoreError> {
        if self.format > COMMAND_FORMAT {
            return Err(crate::StoreError::CommandTooNew {
                found: self.format,
                supported: COMMAND_FORMAT,
            });
        }
        if self.commands.len() > ENVELOPE_COMMANDS_MAX {
            return Err(crate::StoreError::corrupt(
                "raft log",
                format!("an entry of {} commands", self.commands.len()),
            ));
        }
        Ok(())
    }
}

/// Every change to durable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Create a principal.
    CreateUser(CreateUser),
    /// Replace a principal's password hash.
    SetPassword {
        /// The principal.
        name: String,
        /// Its new argon2id PHC string.
        password_hash: String,
        /// When the leader planned it.
        at: Instant,
    },
    /// Replace a principal's calendar-user addresses.
    SetAddresses {
        /// The principal.
        name: String,
        /// `mailto:` URIs.
        addresses: Vec<String>,
        /// When the leader planned it.
        at: Instant,
    },
    /// Remove a principal and everything it owns.
    RemoveUser {
        /// The principal.
        name: String,
        /// When the leader planned it.
        at: Instant,
    },
    /// Create a calendar collection.
    CreateCalendar(CreateCalendar),
    /// Set and remove calendar properties, all or nothing.
    PatchCalendar {
        /// The calendar.
        id: CalendarId,
        /// Properties to set, in order.
        set: Vec<(PropName, String)>,
        /// Properties to remove.
        remove: Vec<PropName>,
        /// When the calendar's time zone changes: every object's index row
        /// re-planned in the new zone (floating and all-day times move).
        /// It must cover every object in the calendar, each at the ETag it
        /// was planned from, or the command changes nothing (plan again).
        #[serde(default)]
        replan: Vec<ObjectReplan>,
        /// When the leader planned it.
        at: Instant,
    },
    /// Delete a calendar and every object, index row and watermark in it.
    DeleteCalendar {
        /// The calendar.
        id: CalendarId,
        /// When the leader planned it.
        at: Instant,
    },
    /// Create or replace a calendar object with its alarm plan (invariant 3).
    PutObject(Box<PutObject>),
    /// Delete a calendar object with its derived rows (invariant 3).
    DeleteObject {
        /// The calendar holding it.
        calendar_id: CalendarId,
        /// Its name within the calendar.
        href: String,
        /// The client's If-Match, checked at apply time against what
        /// `as_user` sees (their view's ETag).
        if_match: Option<String>,
        /// The user deleting (empty: the owner).
        #[serde(default)]
        as_user: String,
        /// When the leader planned it.
        at: Instant,
    },
    /// Fire an object's due alarms: outbox entries, new watermarks and the
    /// new index row, together (invariants 3, 5, 7).
    FireAlarms(Box<FireAlarms>),
    /// Record the result of one delivery attempt.
    RecordDelivery(RecordDelivery),
    /// Set a user's alarm channels.
    SetAlarmSettings(AlarmSettings),
    /// Share a calendar with another user, or change their access. The
    /// first share splits every object's per-user parts (the owner's
    /// alarms) out of the shared text, in the same command.
    ShareCalendar(ShareCalendar),
    /// Stop sharing a calendar with a user: their access, per-user data,
    /// watermarks and pending deliveries go with it.
    RevokeShare {
        /// The calendar.
        calendar_id: CalendarId,
        /// The user it was shared with.
        sharee: String,
        /// When the leader planned it.
        at: Instant,
    },
    /// Set or remove one user's own properties of a calendar (default
    /// alarms, a sharee's colour or name for it).
    PatchUserCalendar {
        /// The calendar.
        calendar_id: CalendarId,
        /// The user.
        user: String,
        /// Properties to set.
        set: Vec<(PropName, String)>,
        /// Properties to remove.
        remove: Vec<PropName>,
        /// When default alarms change: every object's index row re-planned
        /// (all of them, at their current ETags, or nothing changes).
        replan: Vec<ObjectReplan>,
        /// When the leader planned it.
        at: Instant,
    },
    /// Does nothing; used to measure the write path.
    Noop {
        /// Bytes of padding, so benchmarks can size the entry.
        padding: String,
    },
}

impl Command {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateUser(_) => "create_user",
            Command::SetPassword { .. } => "set_password",
            Command::SetAddresses { .. } => "set_addresses",
            Command::RemoveUser { .. } => "remove_user",
            Command::CreateCalendar(_) => "create_calendar",
            Command::PatchCalendar { .. } => "patch_calendar",
            Command::DeleteCalendar { .. } => "delete_calendar",
            Command::PutObject(_) => "put_object",
            Command::DeleteObject { .. } => "delete_object",
            Command::FireAlarms(_) => "fire_alarms",
            Command::RecordDelivery(_) => "record_delivery",
            Command::SetAlarmSettings(_) => "set_alarm_settings",
            Command::ShareCalendar(_) => "share_calendar",
            Command::RevokeShare { .. } => "revoke_share",
            Command::PatchUserCalendar { .. } => "patch_user_calendar",
            Command::Noop { .. } => "noop",
        }
    }
}

/// Create a principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateUser {
    /// Login name, also the last segment of the principal URL.
    pub name: String,
    /// argon2id PHC string, hashed (with its random salt) by the leader.
    pub password_hash: String,
    /// Shown by clients.
    pub display_name: Option<String>,
    /// Calendar-user addresses (`mailto:` URIs).
    pub addresses: Vec<String>,
    /// A first calendar to create with the user, so clients find one.
    pub default_calendar: Option<CreateCalendar>,
    /// When the leader planned it.
    pub at: Instant,
}

/// Create a calendar collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateCalendar {
    /// Planned by the leader.
    pub id: CalendarId,
    /// The owning principal.
    pub owner: String,
    /// The collection's URL segment in the owner's calendar home.
    pub slug: String,
    /// The component types it accepts (`VEVENT`, `VTODO`, …).
    pub components: Vec<String>,
    /// Initial properties.
    pub props: Vec<(PropName, String)>,
    /// When the leader planned it.
    pub at: Instant,
}

/// One planned delivery of one alarm on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    /// The idempotency key (invariant 6): the outbox row's identity, the
    /// email Message-ID and the webhook's `Idempotency-Key`.
    pub key: String,
    /// The user the alarm fires for.
    pub user: String,
    /// `log`, `webhook` or `email`.
    pub channel: String,
    /// The webhook URL or `mailto:` address; `log` for the log.
    pub recipient: String,
    /// The alarm's trigger instant.
    pub trigger: Instant,
    /// `None`: to be sent. `Some(reason)`: recorded as skipped (too late).
    pub skipped: Option<String>,
    /// What is sent (JSON), computed by the leader.
    pub payload: String,
}

/// Fire one object's due alarms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireAlarms {
    /// The object.
    pub object_id: ObjectId,
    /// The object's ETag the plan was computed from; a changed object
    /// makes the command a no-op (the scheduler plans again).
    pub expected_etag: String,
    /// Per user: the watermark the plan started from, and the new one.
    /// A watermark that moved since makes the command a no-op.
    pub watermarks: Vec<WatermarkAdvance>,
    /// The deliveries, pending or skipped.
    pub deliveries: Vec<NewDelivery>,
    /// The object's next alarm-index row (invariant 4).
    pub next_check: Option<Instant>,
    /// When the leader planned it.
    pub at: Instant,
}

/// A watermark moving forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkAdvance {
    /// The user.
    pub user: String,
    /// The watermark the plan read (`None`: the user had none yet).
    pub from: Option<Instant>,
    /// The new watermark.
    pub to: Instant,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    /// The receiver accepted it.
    Delivered,
    /// It failed and will be tried again at `next_attempt`.
    Retry {
        /// When to try again.
        next_attempt: Instant,
        /// Why it failed.
        error: String,
    },
    /// It failed for good: a permanent refusal, or too many attempts.
    Failed {
        /// Why.
        error: String,
    },
}

/// Record one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDelivery {
    /// The outbox entry.
    pub key: String,
    /// What happened.
    pub result: DeliveryResult,
    /// When the leader recorded it.
    pub at: Instant,
}

/// A user's alarm channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSettings {
    /// The user.
    pub user: String,
    /// Channels alarms go to (`log`, `webhook`, `email`).
    pub channels: Vec<String>,
    /// The user's own webhook, instead of the server's.
    pub webhook_url: Option<String>,
    /// The secret that signs the user's webhook deliveries.
    pub webhook_secret: Option<String>,
}

/// What a sharee may do with a shared calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareAccess {
    /// See everything, change only their own per-user data.
    Read,
    /// See and change the calendar's objects.
    ReadWrite,
}

impl ShareAccess {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareAccess::Read => "read",
            ShareAccess::ReadWrite => "read-write",
        }
    }
}

/// Share a calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareCalendar {
    /// The calendar.
    pub calendar_id: CalendarId,
    /// The user it is shared with.
    pub sharee: String,
    /// What they may do.
    pub access: ShareAccess,
    /// Its URL segment in the sharee's calendar home (planned by the
    /// leader, free there); kept if the share already exists.
    pub slug: String,
    /// When the leader planned it.
    pub at: Instant,
}

/// An object's index row planned again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectReplan {
    /// The object.
    pub object_id: ObjectId,
    /// The ETag the plan was computed from.
    pub etag: String,
    /// Its new `next_check`.
    pub next_check: Option<Instant>,
}

/// What a client must find for a write to go ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    /// Write whatever is there.
    None,
    /// `If-Match`: the current ETag must be this one.
    IfMatch(String),
    /// `If-None-Match: *`: nothing may exist at the href.
    IfNoneMatch,
    /// `If-Match: *`: something must exist at the href.
    IfExists,
}

/// Create or replace a calendar object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PutObject {
    /// The calendar holding it.
    pub calendar_id: CalendarId,
    /// Its name within the calendar.
    pub href: String,
    /// The id the object gets if the href is new (planned by the leader).
    pub new_object_id: ObjectId,
    /// The iCalendar UID.
    pub uid: String,
    /// The component type (`VEVENT`, `VTODO`, …).
    pub kind: String,
    /// The iCalendar text exactly as the client sent it.
    pub ical: String,
    /// The strong ETag of `ical`.
    pub etag: String,
    /// Where the object's instances can fall, for time-range queries.
    pub bounds: TimeBounds,
    /// The client's conditional headers, checked at apply time.
    pub precondition: Precondition,
    /// The object's alarm-index row, computed by the leader from the object
    /// itself (invariant 4). `None`: no alarm can fire again.
    pub next_check: Option<Instant>,
    /// [`zone_fingerprint`] of the calendar time zone `next_check` was
    /// computed in; if the zone changed since, the command changes nothing
    /// (plan again), so no index row is ever computed in a stale zone.
    #[serde(default)]
    pub zone_fingerprint: String,
    /// The user writing. With `per_user`, `ical` is the shared part and
    /// `per_user` this user's own part (their alarms, transparency).
    #[serde(default)]
    pub as_user: String,
    /// The writer's per-user part, when the calendar keeps them apart
    /// (it is shared). `None`: the text is stored as it came.
    #[serde(default)]
    pub per_user: Option<String>,
    /// When the leader planned it; also a new object's first watermark.
    pub at: Instant,
}

/// The deterministic answer of `apply` to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The command changed the state at `revision`.
    Applied {
        /// The command's sync revision (see [`revision_of`]).
        revision: u64,
        /// Whether the command created something new (PUT → 201).
        created: bool,
    },
    /// The command was valid but the state did not allow it; nothing changed.
    Rejected(Rejection),
}

/// Why a command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// The target does not exist.
    NotFound,
    /// The target already exists.
    AlreadyExists,
    /// An `If-Match` / `If-None-Match` did not hold.
    PreconditionFailed,
    /// Another object in the calendar has the same UID.
    UidConflict {
        /// The href of the object that holds the UID.
        href: String,
    },
    /// The state moved on since the command was planned (the object or a
    /// watermark changed, the delivery was already settled); plan again.
    Stale,
}
