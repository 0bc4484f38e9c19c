//! Planning shares: who a sharee is, and where the calendar appears in
//! their home.
//!
//! Owns turning "share this calendar with that person, with this access"
//! into one command, for the WebDAV `share-resource` POST and for the
//! admin API alike. A sharee is named by a principal URL or by one of
//! their calendar-user addresses (`mailto:`); the calendar appears in
//! their home under the owner's name for it, made unique there.

use tocsin_store::{CalendarId, Command, Query, ShareAccess, ShareCalendar, StoreError};

/// Suffixes tried to make a sharee's slug unique.
const SLUG_SUFFIXES_MAX: usize = 100;

/// Why a share could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The sharee names nobody on this server.
    #[error("no user on this server is {0:?}")]
    UnknownSharee(String),
    /// Sharing with oneself.
    #[error("a calendar is not shared with its owner")]
    Owner,
    /// No free name in the sharee's home.
    #[error("no free name for the calendar in {0}'s home")]
    NoFreeSlug(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user a sharee reference names: a principal URL (absolute or a
/// path), a `mailto:` address, or a plain user name.
pub fn resolve_sharee(q: &Query<'_>, reference: &str) -> Result<String, ShareError> {
    let reference = reference.trim();
    if let Some(crate::path::Target::Principal(name)) = crate::path::target_of_href(reference) {
        return q
            .principal(&name)?
            .map(|p| p.name)
            .ok_or_else(|| ShareError::UnknownSharee(reference.to_owned()));
    }
    let address = if reference.to_ascii_lowercase().starts_with("mailto:") {
        reference.to_owned()
    } else if reference.contains('@') {
        format!("mailto:{reference}")
    } else {
        return q
            .principal(reference)?
            .map(|p| p.name)
            .ok_or_else(|| ShareError::UnknownSharee(reference.to_owned()));
    };
    q.principals()?
        .into_iter()
        .find(|p| p.addresses.iter().any(|a| a.eq_ignore_ascii_case(&address)))
        .map(|p| p.name)
        .ok_or_else(|| ShareError::UnknownSharee(reference.to_owned()))
}

/// A free URL segment for the calendar in the sharee's home: the owner's
/// name for it, else with the owner's name added, else numbered.
fn free_slug(q: &Query<'_>, sharee: &str, slug: &str, owner: &str) -> Result<String, ShareError> {
    let taken = |candidate: &str| -> Result<bool, StoreError> {
        Ok(q.calendar_for(sharee, candidate)?.is_some())
    };
    if !taken(slug)? {
        return Ok(slug.to_owned());
    }
    let with_owner = format!("{slug}-{owner}");
    if !taken(&with_owner)? {
        return Ok(with_owner);
    }
    for n in 2..SLUG_SUFFIXES_MAX {
        let numbered = format!("{with_owner}-{n}");
        if !taken(&numbered)? {
            return Ok(numbered);
        }
    }
    Err(ShareError::NoFreeSlug(sharee.to_owned()))
}

/// The command sharing `calendar_id` with `sharee` (`None` access: stop
/// sharing), planned at `at`.
pub fn plan_share(
    q: &Query<'_>,
    calendar_id: &CalendarId,
    sharee: &str,
    access: Option<ShareAccess>,
    at: tocsin_calendar::Instant,
) -> Result<Command, ShareError> {
    let calendar = q.calendar(calendar_id)?.ok_or_else(|| {
        ShareError::Store(StoreError::Corrupt {
            table: "calendars",
            detail: "the calendar vanished".into(),
        })
    })?;
    if calendar.owner == sharee {
        return Err(ShareError::Owner);
    }
    let Some(access) = access else {
        return Ok(Command::RevokeShare {
            calendar_id: calendar_id.clone(),
            sharee: sharee.to_owned(),
            at,
        });
    };
    let existing = q
        .shares_of(calendar_id)?
        .into_iter()
        .find(|s| s.sharee == sharee);
    let slug = match existing {
        Some(share) => share.slug,
        None => free_slug(q, sharee, &calendar.slug, &calendar.owner)?,
    };
    Ok(Command::ShareCalendar(ShareCalendar {
        calendar_id: calendar_id.clone(),
        sharee: sharee.to_owned(),
        access,
        slug,
        at,
    }))
}
