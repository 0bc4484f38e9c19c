//! Reads for shared calendars: who sees which calendar, and each user's
//! view of an object.
//!
//! Owns the mapping from a user's calendar home to calendars (their own
//! and those shared with them) and the per-user views: an object as one
//! user sees it is the shared text with their own part merged in (the
//! calendar core's `merge_per_user`), with an ETag and a sync revision
//! that move only when the shared text or their own part changes.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::command::view_etag;
use crate::model::{Calendar, CalendarId, CalendarObject, Change, ObjectSummary, PropName};
use crate::query::Query;

/// How a user reaches a calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// They own it.
    Owner,
    /// Shared with them, read-only.
    Read,
    /// Shared with them, read-write.
    ReadWrite,
}

impl Access {
    fn parse(text: &str) -> Access {
        if text == "read-write" {
            Access::ReadWrite
        } else {
            Access::Read
        }
    }

    /// Whether the user may change the calendar's objects.
    pub fn can_write(self) -> bool {
        matches!(self, Access::Owner | Access::ReadWrite)
    }
}

/// A calendar as one user reaches it.
#[derive(Debug, Clone)]
pub struct CalendarAccess {
    /// The calendar.
    pub calendar: Calendar,
    /// The user's access.
    pub access: Access,
    /// Its URL segment in this user's home.
    pub slug: String,
}

/// One share of a calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRow {
    /// The user it is shared with.
    pub sharee: String,
    /// Their access.
    pub access: Access,
    /// Its URL segment in their home.
    pub slug: String,
}

/// The per-user parts of a calendar's objects for one user: object id →
/// (part, revision).
type Parts = HashMap<String, (String, u64)>;

impl Query<'_> {
    /// The calendar at `slug` in `user`'s home: their own, or one shared with them.
    pub fn calendar_for(
        &self,
        user: &str,
        slug: &str,
    ) -> Result<Option<CalendarAccess>, StoreError> {
        if let Some(calendar) = self.calendar_by_slug(user, slug)? {
            return Ok(Some(CalendarAccess {
                calendar,
                access: Access::Owner,
                slug: slug.to_owned(),
            }));
        }
        let share: Option<(String, String)> = self
            .conn()
            .prepare_cached(
                "SELECT calendar_id, access FROM shares WHERE sharee = ?1 AND slug = ?2",
            )?
            .query_row(params![user, slug], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((id, access)) = share else {
            return Ok(None);
        };
        Ok(self
            .calendar(&CalendarId(id))?
            .map(|calendar| CalendarAccess {
                calendar,
                access: Access::parse(&access),
                slug: slug.to_owned(),
            }))
    }

    /// Every calendar in `user`'s home: their own, then those shared with them.
    pub fn calendars_for(&self, user: &str) -> Result<Vec<CalendarAccess>, StoreError> {
        let mut all: Vec<CalendarAccess> = self
            .calendars_of(user)?
            .into_iter()
            .map(|calendar| CalendarAccess {
                slug: calendar.slug.clone(),
                calendar,
                access: Access::Owner,
            })
            .collect();
        let shared: Vec<(String, String, String)> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT calendar_id, access, slug FROM shares WHERE sharee = ?1 ORDER BY slug",
            )?;
            let rows = stmt.query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, access, slug) in shared {
            if let Some(calendar) = self.calendar(&CalendarId(id))? {
                all.push(CalendarAccess {
                    calendar,
                    access: Access::parse(&access),
                    slug,
                });
            }
        }
        Ok(all)
    }

    /// The shares of a calendar.
    pub fn shares_of(&self, calendar_id: &CalendarId) -> Result<Vec<ShareRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT sharee, access, slug FROM shares WHERE calendar_id = ?1 ORDER BY sharee",
        )?;
        let rows = stmt.query_map([&calendar_id.0], |r| {
            Ok(ShareRow {
                sharee: r.get(0)?,
                access: Access::parse(&r.get::<_, String>(1)?),
                slug: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One user's own properties of a calendar.
    pub fn user_calendar_props(
        &self,
        calendar_id: &CalendarId,
        user: &str,
    ) -> Result<Vec<(PropName, String)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT namespace, name, value FROM user_calendar_props WHERE calendar_id = ?1 AND user = ?2 ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map(params![calendar_id.0, user], |r| {
            Ok((
                PropName::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get(2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The sync revision of a calendar as `user` sees it: shared changes
    /// and their own.
    pub fn user_revision(&self, calendar: &Calendar, user: &str) -> Result<u64, StoreError> {
        let own: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT revision FROM user_calendar_revisions WHERE calendar_id = ?1 AND user = ?2",
            )?
            .query_row(params![calendar.id.0, user], |r| r.get(0))
            .optional()?;
        Ok(calendar.revision.max(own.unwrap_or(0) as u64))
    }

    /// Driven from the user's own rows (CROSS JOIN fixes the loop order):
    /// a listing of a big calendar whose users have few or no per-user
    /// parts must not visit every object of it.
    fn parts_for(&self, calendar_id: &CalendarId, user: &str) -> Result<Parts, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT p.object_id, p.data, p.revision FROM per_user_data p CROSS JOIN objects o ON o.id = p.object_id
             WHERE p.user = ?2 AND o.calendar_id = ?1",
        )?;
        let rows = stmt.query_map(params![calendar_id.0, user], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u64),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One object as `user` sees it.
    pub fn object_for(
        &self,
        calendar_id: &CalendarId,
        href: &str,
        user: &str,
    ) -> Result<Option<CalendarObject>, StoreError> {
        let Some(object) = self.object(calendar_id, href)? else {
            return Ok(None);
        };
        let part: Option<(String, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT data, revision FROM per_user_data WHERE object_id = ?1 AND user = ?2",
            )?
            .query_row(params![object.id.0, user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(Some(apply_part(
            object,
            part.map(|(d, r)| (d, r as u64)).as_ref(),
        )))
    }

    /// Every object of a calendar as `user` sees it.
    pub fn objects_for(
        &self,
        calendar_id: &CalendarId,
        user: &str,
    ) -> Result<Vec<CalendarObject>, StoreError> {
        let parts = self.parts_for(calendar_id, user)?;
        Ok(self
            .objects(calendar_id)?
            .into_iter()
            .map(|o| {
                let part = parts.get(&o.id.0);
                apply_part(o, part)
            })
            .collect())
    }

    /// Objects that may overlap a range, as `user` sees them.
    pub fn objects_possibly_overlapping_for(
        &self,
        calendar_id: &CalendarId,
        start: Option<tocsin_calendar::Instant>,
        end: Option<tocsin_calendar::Instant>,
        user: &str,
    ) -> Result<Vec<CalendarObject>, StoreError> {
        let parts = self.parts_for(calendar_id, user)?;
        Ok(self
            .objects_possibly_overlapping(calendar_id, start, end)?
            .into_iter()
            .map(|o| {
                let part = parts.get(&o.id.0);
                apply_part(o, part)
            })
            .collect())
    }

    /// Every object's metadata as `user` sees it.
    pub fn object_summaries_for(
        &self,
        calendar_id: &CalendarId,
        user: &str,
    ) -> Result<Vec<ObjectSummary>, StoreError> {
        let parts = self.parts_for(calendar_id, user)?;
        if parts.is_empty() {
            return self.object_summaries(calendar_id);
        }
        Ok(self
            .objects_for(calendar_id, user)?
            .iter()
            .map(CalendarObject::summary)
            .collect())
    }

    /// Changes after `revision` as `user` sees them: shared changes and
    /// changes to their own parts, oldest first, at most `limit`.
    pub fn changes_since_for(
        &self,
        calendar_id: &CalendarId,
        user: &str,
        revision: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let parts = self.parts_for(calendar_id, user)?;
        if parts.is_empty() {
            return self.changes_since(calendar_id, revision, limit);
        }
        let mut changes = self.changes_since(calendar_id, revision, usize::MAX)?;
        let reported: std::collections::HashSet<String> = changes
            .iter()
            .map(|c| match c {
                Change::Present(s) => s.href.clone(),
                Change::Deleted { href, .. } => href.clone(),
            })
            .collect();
        for object in self.objects_for(calendar_id, user)? {
            if object.revision > revision && !reported.contains(&object.href) {
                changes.push(Change::Present(object.summary()));
            }
        }
        for change in &mut changes {
            if let Change::Present(summary) = change
                && let Some(object) = self.object_for(calendar_id, &summary.href, user)?
            {
                *summary = object.summary();
            }
        }
        changes.sort_by(|a, b| {
            a.revision()
                .cmp(&b.revision())
                .then_with(|| href_of(a).cmp(href_of(b)))
        });
        changes.truncate(limit);
        Ok(changes)
    }
}

fn href_of(change: &Change) -> &str {
    match change {
        Change::Present(s) => &s.href,
        Change::Deleted { href, .. } => href,
    }
}

/// The object with a user's part merged in: their text, their ETag, and
/// the later of the shared and their own revisions.
fn apply_part(mut object: CalendarObject, part: Option<&(String, u64)>) -> CalendarObject {
    let Some((data, revision)) = part else {
        return object;
    };
    if let Some(merged) = tocsin_calendar::merge_per_user(&object.ical, data) {
        object.ical = merged;
    }
    object.etag = view_etag(&object.etag, Some(data));
    object.revision = object.revision.max(*revision);
    object
}
