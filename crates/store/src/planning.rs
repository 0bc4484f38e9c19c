//! What the leader reads to plan an object's alarms.
//!
//! Owns gathering, for one calendar object, everything besides its text
//! that its next alarm depends on — the calendar's zone, and for each user
//! the object alarms for (the owner, and anyone with per-user data on it):
//! their addresses, watermark and alarm overlay — and handing it to the
//! calendar core (invariant 4: `next_check` is computed from the object
//! itself, over every user). Both the CalDAV writes and the scheduler plan
//! through here, so they cannot disagree. It must never write: planning
//! happens before a command exists.

use rusqlite::{OptionalExtension, params};
use tocsin_calendar::{
    AlarmOverlay, AlarmPolicy, CalendarObject as ParsedObject, DefaultAlarms, Instant, NextCheck,
    UserView, Zone,
};

use crate::StoreError;
use crate::model::{CalendarId, ObjectId, PropName};
use crate::query::Query;

const CALDAV_NS: &str = "urn:ietf:params:xml:ns:caldav";

/// The CalDAV property holding a calendar's time zone (a VCALENDAR with
/// one VTIMEZONE); floating and all-day times are read in it.
pub fn calendar_timezone_prop() -> PropName {
    PropName::new("urn:ietf:params:xml:ns:caldav", "calendar-timezone")
}

/// A user's opt-in (stored per user and calendar, like their default
/// alarms) to have the defaults also ring for events with no alarm of
/// their own: value `true` or `false`.
pub fn defaults_when_none_prop() -> PropName {
    PropName::new(TOCSIN_NS, "default-alarms-when-none")
}

/// Tocsin's own WebDAV property namespace.
pub const TOCSIN_NS: &str = "urn:x-tocsin";

/// A user's default alarms on one calendar from their properties of it
/// (CALDAV `default-alarm-vevent-datetime` / `-date` and the opt-in of
/// [`defaults_when_none_prop`]); `None` when they set none. Both the
/// planner and a PROPPATCH that re-plans read them here, so they agree.
pub fn default_alarms_from_props(props: &[(PropName, String)]) -> Option<DefaultAlarms> {
    let value = |ns: &str, name: &str| {
        props
            .iter()
            .find(|(n, _)| n.namespace == ns && n.name == name)
            .map(|(_, v)| v.as_str())
    };
    let (datetime, date) = (
        value(CALDAV_NS, "default-alarm-vevent-datetime"),
        value(CALDAV_NS, "default-alarm-vevent-date"),
    );
    if datetime.is_none() && date.is_none() {
        return None;
    }
    let when_none = props
        .iter()
        .any(|(n, v)| *n == defaults_when_none_prop() && v.trim().eq_ignore_ascii_case("true"));
    DefaultAlarms::parse(datetime, date)
        .ok()
        .map(|d| d.applied_when_none(when_none))
}

/// One user whose alarms an object may fire.
#[derive(Debug, Clone)]
pub struct AlarmSubject {
    /// The principal.
    pub user: String,
    /// Their calendar-user addresses.
    pub addresses: Vec<String>,
    /// Up to when their alarms on this object were handled (invariant 7);
    /// `None` for an object not yet stored.
    pub watermark: Option<Instant>,
    /// Their own VALARMs, replacing the object's.
    pub overlay: Option<AlarmOverlay>,
    /// Their default alarms, for events that ask for them.
    pub defaults: Option<DefaultAlarms>,
}

/// Everything an object's alarms depend on besides its text.
#[derive(Debug, Clone)]
pub struct AlarmInputs {
    /// The calendar's zone for floating and all-day times.
    pub zone: Zone,
    /// Identifies the zone value `zone` came from (see
    /// [`crate::zone_fingerprint`]); a write planned with it is refused
    /// if the calendar's zone changed meanwhile.
    pub zone_fingerprint: String,
    /// The users, owner first.
    pub subjects: Vec<AlarmSubject>,
}

impl AlarmInputs {
    /// Invariant 4: the earliest trigger after each user's watermark (and
    /// after `now`), over every user.
    pub fn next_check(
        &self,
        object: &ParsedObject,
        now: Instant,
        policy: &AlarmPolicy,
    ) -> Option<NextCheck> {
        let views: Vec<(UserView<'_>, Instant)> = self
            .subjects
            .iter()
            .map(|s| {
                let view = UserView {
                    user: &s.user,
                    addresses: &s.addresses,
                    zone: &self.zone,
                    alarm_overlay: s.overlay.as_ref(),
                    default_alarms: s.defaults.as_ref(),
                };
                (view, s.watermark.unwrap_or(now))
            })
            .collect();
        tocsin_calendar::next_check(object, &views, now, policy)
    }
}

/// A calendar's zone: its `calendar-timezone` property, else UTC. A value
/// that does not parse (it was validated when set) falls back to UTC with
/// a warning rather than stopping alarms for the whole calendar.
pub(crate) fn calendar_zone(q: &Query<'_>, calendar_id: &CalendarId) -> Result<Zone, StoreError> {
    let Some(text) = q.calendar_prop(calendar_id, &calendar_timezone_prop())? else {
        return Ok(Zone::utc());
    };
    Ok(Zone::from_calendar_timezone(&text).unwrap_or_else(|e| {
        tracing::warn!(calendar = %calendar_id, error = %e, "unusable calendar-timezone; using UTC");
        Zone::utc()
    }))
}

impl Query<'_> {
    /// The alarm inputs of an object in `calendar_id` (`object_id` is
    /// `None` for an object about to be created).
    pub fn alarm_inputs(
        &self,
        calendar_id: &CalendarId,
        object_id: Option<&ObjectId>,
    ) -> Result<Option<AlarmInputs>, StoreError> {
        let Some(calendar) = self.calendar(calendar_id)? else {
            return Ok(None);
        };
        let zone_text = self.calendar_prop(calendar_id, &calendar_timezone_prop())?;
        let zone = calendar_zone(self, calendar_id)?;
        let zone_fingerprint = crate::zone_fingerprint(zone_text.as_deref());
        // The owner, everyone with a part of this object (their alarms),
        // and sharees with default alarms: an owner's alarm never goes to a
        // sharee, so a sharee with neither hears nothing.
        let mut users = vec![calendar.owner.clone()];
        if let Some(object_id) = object_id {
            users.extend(self.per_user_data_users(object_id)?);
        }
        users.extend(self.sharees_with_default_alarms(calendar_id)?);
        users.sort();
        users.dedup();
        users.retain(|u| *u != calendar.owner);
        users.insert(0, calendar.owner.clone());
        let mut subjects = Vec::with_capacity(users.len());
        for user in &users {
            let mut subject = self.alarm_subject(user, object_id)?;
            if *user != calendar.owner && subject.overlay.is_none() {
                subject.overlay = self.silent_overlay(object_id)?;
            }
            subject.defaults = self.default_alarms(calendar_id, user)?;
            subjects.push(subject);
        }
        Ok(Some(AlarmInputs {
            zone,
            zone_fingerprint,
            subjects,
        }))
    }

    fn alarm_subject(
        &self,
        user: &str,
        object_id: Option<&ObjectId>,
    ) -> Result<AlarmSubject, StoreError> {
        let addresses = self
            .principal(user)?
            .map(|p| p.addresses)
            .unwrap_or_default();
        let (watermark, overlay) = match object_id {
            Some(id) => (self.watermark(id, user)?, self.overlay(id, user)?),
            None => (None, None),
        };
        Ok(AlarmSubject {
            user: user.to_owned(),
            addresses,
            watermark,
            overlay,
            defaults: None,
        })
    }

    /// An overlay with no alarm for any component of the object: what a
    /// sharee without their own part hears (the shared text's alarms are
    /// the owner's).
    fn silent_overlay(
        &self,
        object_id: Option<&ObjectId>,
    ) -> Result<Option<AlarmOverlay>, StoreError> {
        let Some(object) = object_id
            .map(|id| self.object_by_id(id))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let silent = tocsin_calendar::strip_per_user(&object.ical)
            .and_then(|shared| tocsin_calendar::split_per_user(&shared))
            .and_then(|(_, stubs)| AlarmOverlay::parse(&stubs).ok());
        Ok(silent)
    }

    /// A user's default alarms on a calendar, if set.
    fn default_alarms(
        &self,
        calendar_id: &CalendarId,
        user: &str,
    ) -> Result<Option<DefaultAlarms>, StoreError> {
        let props = self.user_calendar_props(calendar_id, user)?;
        Ok(default_alarms_from_props(&props))
    }

    fn sharees_with_default_alarms(
        &self,
        calendar_id: &CalendarId,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT user FROM user_calendar_props WHERE calendar_id = ?1 AND namespace = ?2
             AND name IN ('default-alarm-vevent-datetime', 'default-alarm-vevent-date') ORDER BY user",
        )?;
        let rows = stmt.query_map(params![calendar_id.0, CALDAV_NS], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn watermark(&self, object_id: &ObjectId, user: &str) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT handled_until_ms FROM alarm_watermarks WHERE object_id = ?1 AND user = ?2",
            )?
            .query_row([&object_id.0, user], |r| r.get::<_, i64>(0))
            .optional()?
            .map(Instant::from_millis))
    }

    fn overlay(
        &self,
        object_id: &ObjectId,
        user: &str,
    ) -> Result<Option<AlarmOverlay>, StoreError> {
        let text: Option<String> = self
            .conn()
            .prepare_cached("SELECT data FROM per_user_data WHERE object_id = ?1 AND user = ?2")?
            .query_row([&object_id.0, user], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| AlarmOverlay::parse(&t).ok()))
    }

    fn per_user_data_users(&self, object_id: &ObjectId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT user FROM per_user_data WHERE object_id = ?1 ORDER BY user")?;
        let rows = stmt.query_map([&object_id.0], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
