//! REPORT: calendar-query and calendar-multiget (RFC 4791 §7.8–7.9),
//! sync-collection (RFC 6578) and free-busy-query (RFC 4791 §7.10).
//!
//! Queries are evaluated by the calendar core against expanded instances
//! (overrides, EXDATE, zones); the store's per-object time bounds only
//! narrow the candidates first. A sync answer longer than the client's
//! `limit` or the server's bound is truncated the RFC 6578 way: a 507 for
//! the collection and a token from which the next request continues.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tocsin_calendar::{
    CalendarObject as ParsedObject, Collation, CompFilter, Instant, ParamFilter, PropFilter,
    TextMatch, TimeRange, Zone,
};
use tocsin_store::{Calendar, CalendarObject, Change};

use super::propfind::{multistatus_response, respond_object};
use super::{PropRequest, load_calendar};
use crate::error::{Condition, DavError, DavResult};
use crate::path::{Target, target_of_href};
use crate::props::{PropContext, parse_sync_token, sync_token};
use crate::xml::{self, CALDAV, DAV, Element, Multistatus};
use crate::{Ctx, DavRequest};

pub(crate) async fn report(ctx: &Ctx, target: Target, request: &DavRequest) -> DavResult<Response> {
    let body = &request.body;
    let root = xml::parse(body, &ctx.state.config().xml)?;
    match (root.ns.as_str(), root.name.as_str()) {
        (CALDAV, "calendar-query") => calendar_query(ctx, target, &root),
        (CALDAV, "calendar-multiget") => calendar_multiget(ctx, &root),
        (DAV, "sync-collection") => sync_collection(ctx, target, &root),
        (CALDAV, "free-busy-query") => free_busy_query(ctx, target, &root),
        (DAV, "principal-property-search") => {
            super::principal_search::check_target(&target)?;
            super::principal_search::principal_property_search(ctx, &root)
        }
        (DAV, "principal-search-property-set") => {
            super::principal_search::check_target(&target)?;
            super::principal_search::principal_search_property_set()
        }
        (_, name) => Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::SupportedReport,
            format!("the {name} report is not supported here"),
        )),
    }
}

fn prop_context(ctx: &Ctx) -> PropContext<'_> {
    PropContext {
        user: &ctx.user.name,
        object_bytes_max: ctx.state.config().calendar.object_bytes_max,
    }
}

/// How calendar-data is to be returned (RFC 4791 §9.6).
#[derive(Debug, Clone, Default)]
struct DataShape {
    expand: Option<TimeRange>,
    limit_recurrence_set: Option<TimeRange>,
}

impl DataShape {
    fn from_prop_request(root: &Element) -> DavResult<DataShape> {
        let Some(data) = root
            .child(DAV, "prop")
            .and_then(|p| p.child(CALDAV, "calendar-data"))
        else {
            return Ok(DataShape::default());
        };
        if let Some(content_type) = data.attr("content-type")
            && !content_type.eq_ignore_ascii_case("text/calendar")
        {
            return Err(DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::SupportedCalendarData,
                format!("calendar data is served as text/calendar, not {content_type}"),
            ));
        }
        Ok(DataShape {
            expand: data
                .child(CALDAV, "expand")
                .map(time_range_of)
                .transpose()?,
            limit_recurrence_set: data
                .child(CALDAV, "limit-recurrence-set")
                .map(time_range_of)
                .transpose()?,
        })
    }

    fn is_plain(&self) -> bool {
        self.expand.is_none() && self.limit_recurrence_set.is_none()
    }

    /// The text to return for an object: as stored, or reshaped.
    fn render(
        &self,
        object: &CalendarObject,
        parsed: Option<&ParsedObject>,
        zone: &Zone,
        limits: &tocsin_calendar::Limits,
    ) -> String {
        if self.is_plain() {
            return object.ical.clone();
        }
        let owned;
        let parsed = match parsed {
            Some(p) => p,
            None => match ParsedObject::parse(&object.ical, limits) {
                Ok(p) => {
                    owned = p;
                    &owned
                }
                Err(_) => return object.ical.clone(),
            },
        };
        match (&self.expand, &self.limit_recurrence_set) {
            (Some(range), _) => parsed.expand(range, zone),
            (None, Some(range)) => parsed.limit_recurrence_set(range, zone),
            (None, None) => object.ical.clone(),
        }
    }
}

/// An iCalendar UTC date-time (`20261204T100000Z`) as an instant.
fn parse_utc(text: &str) -> Option<Instant> {
    let t = text.trim();
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = t.split_once('T').unwrap_or((t, "000000"));
    if date.len() != 8
        || time.len() != 6
        || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (year, month, day) = (num(&date[..4])?, num(&date[4..6])?, num(&date[6..])?);
    let (hour, minute, second) = (num(&time[..2])?, num(&time[2..4])?, num(&time[4..])?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Instant::from_millis(
        ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn time_range_of(element: &Element) -> DavResult<TimeRange> {
    let bound = |name: &str| -> DavResult<Option<Instant>> {
        match element.attr(name) {
            None => Ok(None),
            Some(v) => parse_utc(v).map(Some).ok_or_else(|| {
                DavError::condition(
                    StatusCode::FORBIDDEN,
                    Condition::ValidFilter,
                    format!("time-range {name}={v:?} is not a UTC date-time like 20261204T100000Z"),
                )
            }),
        }
    };
    let range = TimeRange {
        start: bound("start")?,
        end: bound("end")?,
    };
    if range.start.is_none() && range.end.is_none() {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidFilter,
            "time-range without start or end",
        ));
    }
    Ok(range)
}

fn text_match_of(element: &Element) -> DavResult<TextMatch> {
    let collation = match element.attr("collation").unwrap_or("i;ascii-casemap") {
        "i;ascii-casemap" => Collation::AsciiCasemap,
        "i;octet" => Collation::Octet,
        "i;unicode-casemap" => Collation::UnicodeCasemap,
        other => {
            return Err(DavError::forbidden(format!(
                "collation {other:?} is not supported (CALDAV:supported-collation)"
            )));
        }
    };
    let negate = element
        .attr("negate-condition")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    Ok(TextMatch {
        text: element.text.clone(),
        collation,
        negate,
    })
}

fn comp_filter_of(element: &Element) -> DavResult<CompFilter> {
    let name = element.attr("name").ok_or_else(|| {
        DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidFilter,
            "comp-filter without a name",
        )
    })?;
    let mut filter = CompFilter {
        name: name.to_ascii_uppercase(),
        ..CompFilter::default()
    };
    for child in &element.children {
        match (child.ns.as_str(), child.name.as_str()) {
            (CALDAV, "is-not-defined") => filter.is_not_defined = true,
            (CALDAV, "time-range") => filter.time_range = Some(time_range_of(child)?),
            (CALDAV, "prop-filter") => filter.prop_filters.push(prop_filter_of(child)?),
            (CALDAV, "comp-filter") => filter.comp_filters.push(comp_filter_of(child)?),
            _ => {}
        }
    }
    Ok(filter)
}

fn prop_filter_of(element: &Element) -> DavResult<PropFilter> {
    let name = element.attr("name").ok_or_else(|| {
        DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidFilter,
            "prop-filter without a name",
        )
    })?;
    let mut filter = PropFilter {
        name: name.to_ascii_uppercase(),
        ..PropFilter::default()
    };
    for child in &element.children {
        match (child.ns.as_str(), child.name.as_str()) {
            (CALDAV, "is-not-defined") => filter.is_not_defined = true,
            (CALDAV, "time-range") => filter.time_range = Some(time_range_of(child)?),
            (CALDAV, "text-match") => filter.text_match = Some(text_match_of(child)?),
            (CALDAV, "param-filter") => filter.param_filters.push(param_filter_of(child)?),
            _ => {}
        }
    }
    Ok(filter)
}

fn param_filter_of(element: &Element) -> DavResult<ParamFilter> {
    let name = element.attr("name").ok_or_else(|| {
        DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidFilter,
            "param-filter without a name",
        )
    })?;
    let mut filter = ParamFilter {
        name: name.to_ascii_uppercase(),
        ..ParamFilter::default()
    };
    for child in &element.children {
        match (child.ns.as_str(), child.name.as_str()) {
            (CALDAV, "is-not-defined") => filter.is_not_defined = true,
            (CALDAV, "text-match") => filter.text_match = Some(text_match_of(child)?),
            _ => {}
        }
    }
    Ok(filter)
}

/// The calendar's zone (for floating and all-day times): the query's
/// CALDAV:timezone, else the calendar's calendar-timezone, else UTC.
fn query_zone(ctx: &Ctx, calendar: &Calendar, root: &Element) -> DavResult<Zone> {
    if let Some(tz) = root.child(CALDAV, "timezone") {
        return Zone::from_calendar_timezone(&tz.text).map_err(|e| {
            DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::ValidCalendarData,
                format!("timezone: {e}"),
            )
        });
    }
    if let Some(id) = root.child(CALDAV, "timezone-id") {
        return Zone::iana(id.text_trimmed()).ok_or_else(|| {
            DavError::forbidden(format!("unknown time zone {:?}", id.text_trimmed()))
        });
    }
    let stored = ctx
        .state
        .reader()
        .read(|q| q.calendar_prop(calendar.id_ref(), &tocsin_store::calendar_timezone_prop()))?;
    Ok(stored
        .and_then(|text| Zone::from_calendar_timezone(&text).ok())
        .unwrap_or_else(Zone::utc))
}

trait CalendarIdRef {
    fn id_ref(&self) -> &tocsin_store::CalendarId;
}

impl CalendarIdRef for Calendar {
    fn id_ref(&self) -> &tocsin_store::CalendarId {
        &self.id
    }
}

/// The widest time range the filter requires of the calendar's
/// components, to narrow the candidates with the stored bounds.
fn candidate_range(filter: &CompFilter) -> Option<TimeRange> {
    let ranges: Vec<TimeRange> = filter
        .comp_filters
        .iter()
        .filter(|f| !f.is_not_defined)
        .map(|f| f.time_range)
        .collect::<Option<Vec<_>>>()?;
    let start = ranges.iter().map(|r| r.start).min().flatten();
    let end = ranges
        .iter()
        .map(|r| r.end)
        .collect::<Option<Vec<_>>>()
        .and_then(|e| e.into_iter().max());
    (!ranges.is_empty()).then_some(TimeRange { start, end })
}

fn calendar_query(ctx: &Ctx, target: Target, root: &Element) -> DavResult<Response> {
    let wanted = PropRequest::from_parent(root);
    let shape = DataShape::from_prop_request(root)?;
    let filter_element = root
        .child(CALDAV, "filter")
        .and_then(|f| f.child(CALDAV, "comp-filter"))
        .ok_or_else(|| {
            DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::ValidFilter,
                "calendar-query needs a filter",
            )
        })?;
    let filter = comp_filter_of(filter_element)?;
    if filter.name != "VCALENDAR" {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidFilter,
            "the outer comp-filter must name VCALENDAR",
        ));
    }
    let (calendar, only) = match target {
        Target::Calendar(user, slug) => (load_calendar(ctx, &user, &slug)?, None),
        Target::Object(user, slug, name) => (load_calendar(ctx, &user, &slug)?, Some(name)),
        _ => {
            return Err(DavError::forbidden(
                "calendar-query is answered on calendars and their objects",
            ));
        }
    };
    let zone = query_zone(ctx, &calendar, root)?;
    let range = candidate_range(&filter);
    let candidates = ctx.state.reader().read(|q| match &only {
        Some(name) => Ok(q
            .object_for(&calendar.id, name, &ctx.user.name)?
            .into_iter()
            .collect()),
        None => match range {
            Some(r) => {
                q.objects_possibly_overlapping_for(&calendar.id, r.start, r.end, &ctx.user.name)
            }
            None => q.objects_for(&calendar.id, &ctx.user.name),
        },
    })?;
    let limits = ctx.state.config().calendar;
    let pctx = prop_context(ctx);
    let mut ms = Multistatus::new();
    for object in &candidates {
        let Ok(parsed) = ParsedObject::parse(&object.ical, &limits) else {
            tracing::warn!(href = %object.href, "stored object no longer parses; left out of the query");
            continue;
        };
        if !parsed.matches(&for_component(&filter, &object.kind), &zone) {
            continue;
        }
        let text = shape.render(object, Some(&parsed), &zone, &limits);
        respond_object(
            &mut ms,
            &calendar,
            &object.summary(),
            Some(&text),
            &wanted,
            &pctx,
        );
    }
    Ok(multistatus_response(ms.finish()))
}

/// Properties the VCALENDAR component itself carries.
const VCALENDAR_PROPERTIES: [&str; 4] = ["VERSION", "PRODID", "CALSCALE", "METHOD"];

/// A prop-filter placed directly under the VCALENDAR comp-filter that
/// names a property of the events inside (SUMMARY, CATEGORIES, …) can
/// only have meant "a component with that property": clients that send it
/// leave out the component type. It is answered as if it were nested in a
/// comp-filter for the object's own component type, instead of matching
/// nothing.
fn for_component(filter: &CompFilter, kind: &str) -> CompFilter {
    let (own, meant_for_component): (Vec<PropFilter>, Vec<PropFilter>) = filter
        .prop_filters
        .iter()
        .cloned()
        .partition(|p| VCALENDAR_PROPERTIES.contains(&p.name.as_str()));
    if meant_for_component.is_empty() {
        return filter.clone();
    }
    let mut rewritten = filter.clone();
    rewritten.prop_filters = own;
    rewritten.comp_filters.push(CompFilter {
        name: kind.to_owned(),
        prop_filters: meant_for_component,
        ..CompFilter::default()
    });
    rewritten
}

fn calendar_multiget(ctx: &Ctx, root: &Element) -> DavResult<Response> {
    let wanted = PropRequest::from_parent(root);
    let shape = DataShape::from_prop_request(root)?;
    let limits = ctx.state.config().calendar;
    let pctx = prop_context(ctx);
    let mut ms = Multistatus::new();
    for href in root.children_named(DAV, "href") {
        let href_text = href.text_trimmed();
        let Some(Target::Object(user, slug, name)) = target_of_href(href_text) else {
            ms.status_response(href_text, 404, None);
            continue;
        };
        let found = load_calendar(ctx, &user, &slug).ok().and_then(|calendar| {
            let object = ctx
                .state
                .reader()
                .read(|q| q.object_for(&calendar.id, &name, &ctx.user.name))
                .ok()
                .flatten()?;
            Some((calendar, object))
        });
        match found {
            Some((calendar, object)) => {
                let zone = if shape.is_plain() {
                    Zone::utc()
                } else {
                    query_zone(ctx, &calendar, root)?
                };
                let text = shape.render(&object, None, &zone, &limits);
                respond_object(
                    &mut ms,
                    &calendar,
                    &object.summary(),
                    Some(&text),
                    &wanted,
                    &pctx,
                );
            }
            None => ms.status_response(href_text, 404, None),
        }
    }
    Ok(multistatus_response(ms.finish()))
}

fn sync_collection(ctx: &Ctx, target: Target, root: &Element) -> DavResult<Response> {
    let Target::Calendar(user, slug) = target else {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::SupportedReport,
            "sync-collection is answered on calendar collections",
        ));
    };
    let wanted = PropRequest::from_parent(root);
    let calendar = load_calendar(ctx, &user, &slug)?;
    let token_text = root
        .child(DAV, "sync-token")
        .map(Element::text_trimmed)
        .unwrap_or("");
    let since = if token_text.is_empty() {
        None
    } else {
        Some(parse_sync_token(&calendar, token_text).ok_or_else(|| {
            DavError::condition(
                StatusCode::FORBIDDEN,
                Condition::ValidSyncToken,
                "this sync token is not valid for this calendar",
            )
        })?)
    };
    let client_limit = root
        .child(DAV, "limit")
        .and_then(|l| l.child(DAV, "nresults"))
        .and_then(|n| n.text_trimmed().parse::<usize>().ok());
    let limit = client_limit
        .unwrap_or(usize::MAX)
        .min(ctx.state.config().sync_changes_max)
        .max(1);
    let wants_data = wanted.wants(CALDAV, "calendar-data");
    // None: the token is older than the calendar's sync horizon. Checked
    // in the same read as the changes, so a prune between the two cannot
    // hide a deletion.
    let answered = ctx.state.reader().read(|q| {
        let current =
            q.calendar(&calendar.id)?
                .ok_or_else(|| tocsin_store::StoreError::Corrupt {
                    table: "calendars",
                    detail: "calendar vanished during a read transaction".into(),
                })?;
        let revision = q.user_revision(&current, &ctx.user.name)?;
        let horizon = q.sync_horizon(&calendar.id)?;
        if since.is_some_and(|since| since < horizon) {
            return Ok(None);
        }
        let changes =
            q.changes_since_for(&calendar.id, &ctx.user.name, since.unwrap_or(0), limit + 1)?;
        let objects = if wants_data {
            changes
                .iter()
                .filter_map(|c| match c {
                    Change::Present(s) => Some(s.href.clone()),
                    Change::Deleted { .. } => None,
                })
                .map(|href| q.object_for(&calendar.id, &href, &ctx.user.name))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some((revision, changes, objects)))
    })?;
    let Some((current_revision, mut changes, objects)) = answered else {
        return Err(DavError::condition(
            StatusCode::FORBIDDEN,
            Condition::ValidSyncToken,
            "this sync token is older than the deletions this calendar remembers; sync again without a token",
        ));
    };
    let truncated = changes.len() > limit;
    changes.truncate(limit);
    let new_revision = match (truncated, changes.last()) {
        (true, Some(last)) => last.revision(),
        _ => current_revision.max(since.unwrap_or(0)),
    };
    let pctx = prop_context(ctx);
    let mut ms = Multistatus::new();
    for change in &changes {
        match change {
            Change::Present(summary) => {
                let ical = objects
                    .iter()
                    .find(|o| o.href == summary.href)
                    .map(|o| o.ical.as_str());
                respond_object(&mut ms, &calendar, summary, ical, &wanted, &pctx);
            }
            Change::Deleted { href, .. } if since.is_some() => {
                ms.status_response(&calendar.object_href(href), 404, None);
            }
            Change::Deleted { .. } => {}
        }
    }
    if truncated {
        ms.status_response(
            &calendar.href(),
            507,
            Some(&Condition::NumberOfMatchesWithinLimits.xml()),
        );
    }
    ms.sync_token(&sync_token(&calendar, new_revision));
    Ok(multistatus_response(ms.finish()))
}

fn free_busy_query(ctx: &Ctx, target: Target, root: &Element) -> DavResult<Response> {
    let Target::Calendar(user, slug) = target else {
        return Err(DavError::forbidden(
            "free-busy-query is answered on calendar collections",
        ));
    };
    let calendar = load_calendar(ctx, &user, &slug)?;
    let range = root
        .child(CALDAV, "time-range")
        .map(time_range_of)
        .transpose()?
        .ok_or_else(|| DavError::bad_request("free-busy-query needs a time-range"))?;
    let zone = query_zone(ctx, &calendar, root)?;
    let objects = ctx.state.reader().read(|q| {
        q.objects_possibly_overlapping_for(&calendar.id, range.start, range.end, &ctx.user.name)
    })?;
    let limits = ctx.state.config().calendar;
    let mut periods = Vec::new();
    for object in &objects {
        if let Ok(parsed) = ParsedObject::parse(&object.ical, &limits) {
            periods.extend(parsed.busy_periods(&range, &zone));
        }
    }
    periods.sort_by_key(|p| (p.start, p.end));
    let mut body = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tocsin//CalDAV//EN\r\nBEGIN:VFREEBUSY\r\n",
    );
    body.push_str(&format!("DTSTAMP:{}\r\n", ctx.state.now().to_ical_utc()));
    if let Some(start) = range.start {
        body.push_str(&format!("DTSTART:{}\r\n", start.to_ical_utc()));
    }
    if let Some(end) = range.end {
        body.push_str(&format!("DTEND:{}\r\n", end.to_ical_utc()));
    }
    for period in periods {
        let kind = match period.kind {
            tocsin_calendar::BusyKind::Busy => "BUSY",
            tocsin_calendar::BusyKind::Tentative => "BUSY-TENTATIVE",
            tocsin_calendar::BusyKind::Unavailable => "BUSY-UNAVAILABLE",
        };
        body.push_str(&format!(
            "FREEBUSY;FBTYPE={kind}:{}/{}\r\n",
            period.start.to_ical_utc(),
            period.end.to_ical_utc()
        ));
    }
    body.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_date_times_parse() {
        assert_eq!(parse_utc("19700101T000000Z"), Some(Instant::from_millis(0)));
        assert_eq!(
            parse_utc("20261204T100000Z")
                .map(Instant::to_rfc3339)
                .as_deref(),
            Some("2026-12-04T10:00:00Z")
        );
        assert_eq!(
            parse_utc("20240229T235959Z")
                .map(Instant::to_rfc3339)
                .as_deref(),
            Some("2024-02-29T23:59:59Z")
        );
        assert_eq!(parse_utc("2026-12-04"), None);
        assert_eq!(parse_utc("20261304T000000Z"), None);
    }

    #[test]
    fn the_candidate_range_covers_every_nested_time_range() {
        let filter = CompFilter {
            name: "VCALENDAR".into(),
            comp_filters: vec![
                CompFilter {
                    name: "VEVENT".into(),
                    time_range: Some(TimeRange {
                        start: Some(Instant::from_millis(10)),
                        end: Some(Instant::from_millis(20)),
                    }),
                    ..CompFilter::default()
                },
                CompFilter {
                    name: "VTODO".into(),
                    time_range: Some(TimeRange {
                        start: Some(Instant::from_millis(5)),
                        end: Some(Instant::from_millis(15)),
                    }),
                    ..CompFilter::default()
                },
            ],
            ..CompFilter::default()
        };
        let range = candidate_range(&filter).unwrap();
        assert_eq!(range.start, Some(Instant::from_millis(5)));
        assert_eq!(range.end, Some(Instant::from_millis(20)));
        let unbounded = CompFilter {
            name: "VCALENDAR".into(),
            comp_filters: vec![CompFilter {
                name: "VEVENT".into(),
                ..CompFilter::default()
            }],
            ..CompFilter::default()
        };
        assert_eq!(candidate_range(&unbounded), None);
    }
}
