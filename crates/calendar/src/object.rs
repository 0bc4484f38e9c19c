//! One calendar object resource (RFC 4791 §4.1): parsing, validation and the
//! normalised model the other modules compute with.
//!
//! Owns: `CalendarObject`, `Limits`, `ComponentKind`, and the per-component
//! model `Comp` (times, recurrence parts, status, attendees, alarms).
//! Must never: expand recurrences itself (that is `instance`), read a clock,
//! or trust calcard to pair overrides with instances (issue 3, pitfall (a):
//! calcard pairs by SEQUENCE and RECURRENCE-ID; we pair by RECURRENCE-ID
//! alone, in `instance`).
//!
//! calcard is used in lenient mode: its strict mode rejects every nested
//! BEGIN (0.3.14), so structure is validated here instead.

use crate::alarm::{Alarm, parse_alarm};
use crate::error::CalendarError;
use crate::rrule::{Rule, Until};
use crate::value::{DateValue, Dur, duration_of, tzid_of};
use crate::zone::Zone;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarParameterValue, ICalendarParticipationStatus, ICalendarPeriod, ICalendarProperty,
    ICalendarStatus, ICalendarTransparency, ICalendarValue,
};

/// Bounds on what one object may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted text, in bytes.
    pub object_bytes_max: usize,
    /// Most components (VCALENDAR, VEVENT, VALARM, VTIMEZONE… together).
    pub components_max: usize,
    /// Most properties over all components.
    pub properties_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            object_bytes_max: 1 << 20,
            components_max: 1000,
            properties_max: 10_000,
        }
    }
}

/// The component type of a calendar object resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// VEVENT
    Event,
    /// VTODO
    Todo,
    /// VJOURNAL
    Journal,
    /// VFREEBUSY
    FreeBusy,
    /// VAVAILABILITY (RFC 7953)
    Availability,
}

impl ComponentKind {
    /// The iCalendar component name.
    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::Event => "VEVENT",
            ComponentKind::Todo => "VTODO",
            ComponentKind::Journal => "VJOURNAL",
            ComponentKind::FreeBusy => "VFREEBUSY",
            ComponentKind::Availability => "VAVAILABILITY",
        }
    }

    fn of(t: &ICalendarComponentType) -> Option<ComponentKind> {
        match t {
            ICalendarComponentType::VEvent => Some(ComponentKind::Event),
            ICalendarComponentType::VTodo => Some(ComponentKind::Todo),
            ICalendarComponentType::VJournal => Some(ComponentKind::Journal),
            ICalendarComponentType::VFreebusy => Some(ComponentKind::FreeBusy),
            ICalendarComponentType::VAvailability => Some(ComponentKind::Availability),
            _ => None,
        }
    }
}

/// An RDATE value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RDate {
    /// A DATE or DATE-TIME: an extra instance with the master's duration.
    At(DateValue),
    /// A PERIOD: an extra instance with its own end.
    Period(DateValue, PeriodEnd),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeriodEnd {
    End(DateValue),
    Duration(Dur),
}

/// STATUS values that change what the core does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Cancelled,
    Tentative,
    Other,
}

/// An ATTENDEE: address (lower-cased) and whether it declined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attendee {
    pub address: String,
    pub declined: bool,
}

/// A master or override component, normalised.
#[derive(Clone, Debug)]
pub(crate) struct Comp {
    /// Index of the calcard component.
    pub index: usize,
    pub dtstart: Option<DateValue>,
    pub dtend: Option<DateValue>,
    pub duration: Option<Dur>,
    pub due: Option<DateValue>,
    pub rrules: Vec<Rule>,
    pub rdates: Vec<RDate>,
    pub exdates: Vec<DateValue>,
    pub recurrence_id: Option<DateValue>,
    pub this_and_future: bool,
    pub status: Status,
    pub transparent: bool,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub attendees: Vec<Attendee>,
    pub alarms: Vec<Alarm>,
    pub created: Option<DateValue>,
    pub completed: Option<DateValue>,
}

impl Comp {
    pub(crate) fn is_recurring(&self) -> bool {
        !self.rrules.is_empty() || !self.rdates.is_empty()
    }

    /// The anchor of the component's instances: DTSTART, else (VTODO) DUE.
    pub(crate) fn anchor(&self) -> Option<DateValue> {
        self.dtstart.or(self.due)
    }
}

/// One calendar object resource: one UID, a master and/or overrides, their
/// VTIMEZONEs.
#[derive(Clone, Debug)]
pub struct CalendarObject {
    pub(crate) cal: ICalendar,
    pub(crate) kind: ComponentKind,
    /// Invariant: not empty.
    pub(crate) uid: String,
    /// Resolved zones, indexed by `DateValue::Zoned`.
    pub(crate) zones: Vec<Zone>,
    pub(crate) zone_ids: Vec<String>,
    /// Calcard indices of the VTIMEZONE components.
    pub(crate) timezone_indices: Vec<usize>,
    /// Master first (when present), then overrides sorted by RECURRENCE-ID.
    /// Invariant: not empty.
    pub(crate) comps: Vec<Comp>,
    pub(crate) has_master: bool,
}

fn first_text(c: &ICalendarComponent, p: &ICalendarProperty) -> Option<String> {
    let entry = c.property(p)?;
    let texts: Vec<&str> = entry.values.iter().filter_map(|v| v.as_text()).collect();
    (!texts.is_empty()).then(|| texts.join(","))
}

impl CalendarObject {
    /// Parses and validates one calendar object resource.
    pub fn parse(text: &str, limits: &Limits) -> Result<Self, CalendarError> {
        if text.len() > limits.object_bytes_max {
            return Err(CalendarError::OverLimit(format!(
                "{} bytes, the limit is {}",
                text.len(),
                limits.object_bytes_max
            )));
        }
        let cal = parse_single_calendar(text)?;
        check_limits(&cal, limits)?;
        Self::from_calendar(cal)
    }

    fn from_calendar(cal: ICalendar) -> Result<Self, CalendarError> {
        let root = cal
            .components
            .first()
            .ok_or_else(|| CalendarError::NotICalendar("empty".into()))?;
        if root.component_type != ICalendarComponentType::VCalendar {
            return Err(CalendarError::NotICalendar(
                "the text does not start with BEGIN:VCALENDAR".into(),
            ));
        }
        if root.property(&ICalendarProperty::Method).is_some() {
            return Err(CalendarError::NotSingleObject(
                "METHOD is not allowed in a stored calendar object (RFC 4791 §4.1)".into(),
            ));
        }
        let mut kind: Option<ComponentKind> = None;
        let mut tops = Vec::new();
        let mut timezone_indices = Vec::new();
        for id in &root.component_ids {
            let i = *id as usize;
            let Some(c) = cal.components.get(i) else {
                continue;
            };
            match &c.component_type {
                ICalendarComponentType::VTimezone => timezone_indices.push(i),
                t => {
                    let k = ComponentKind::of(t).ok_or_else(|| {
                        CalendarError::UnsupportedComponent(format!(
                            "{} is not a supported component",
                            component_name(t)
                        ))
                    })?;
                    if kind.is_some_and(|prev| prev != k) {
                        return Err(CalendarError::NotSingleObject(
                            "components of different types in one resource".into(),
                        ));
                    }
                    kind = Some(k);
                    tops.push(i);
                }
            }
        }
        let kind = kind.ok_or_else(|| {
            CalendarError::NotSingleObject("no VEVENT, VTODO, VJOURNAL or VFREEBUSY".into())
        })?;
        let (mut zones, mut zone_ids) = resolve_zones(&cal, &timezone_indices)?;
        add_bare_tzids(&cal, &mut zones, &mut zone_ids);
        let uid = single_uid(&cal, &tops)?;
        let mut comps = Vec::with_capacity(tops.len());
        for i in &tops {
            let c = &cal.components[*i];
            comps.push(parse_comp(&cal, c, *i, kind, &zone_ids, &zones)?);
        }
        let masters = comps.iter().filter(|c| c.recurrence_id.is_none()).count();
        if masters > 1 {
            return Err(CalendarError::NotSingleObject(format!(
                "{masters} components share UID {uid} without RECURRENCE-ID"
            )));
        }
        comps.sort_by_key(|c| {
            (
                c.recurrence_id.is_some(),
                c.recurrence_id.map(|r| r.local()),
            )
        });
        let rids: Vec<_> = comps
            .iter()
            .filter_map(|c| c.recurrence_id.map(|r| r.local()))
            .collect();
        if rids.windows(2).any(|w| w[0] == w[1]) {
            return Err(CalendarError::NotSingleObject(
                "two overrides with the same RECURRENCE-ID".into(),
            ));
        }
        Ok(CalendarObject {
            cal,
            kind,
            uid,
            zones,
            zone_ids,
            timezone_indices,
            comps,
            has_master: masters == 1,
        })
    }

    /// The object's UID.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The component type.
    pub fn kind(&self) -> ComponentKind {
        self.kind
    }

    /// The master's (or first component's) SUMMARY.
    pub fn summary(&self) -> Option<&str> {
        self.main().summary.as_deref()
    }

    /// The master's (or first component's) DESCRIPTION.
    pub fn description(&self) -> Option<&str> {
        self.main().description.as_deref()
    }

    /// The master's (or first component's) LOCATION.
    pub fn location(&self) -> Option<&str> {
        self.main().location.as_deref()
    }

    /// True when the master has an RRULE or RDATE, or there are overrides.
    pub fn is_recurring(&self) -> bool {
        self.comps
            .iter()
            .any(|c| c.is_recurring() || c.recurrence_id.is_some())
    }

    pub(crate) fn main(&self) -> &Comp {
        // Invariant: comps is not empty (checked in from_calendar).
        &self.comps[0]
    }

    pub(crate) fn master(&self) -> Option<&Comp> {
        self.has_master.then(|| &self.comps[0])
    }

    pub(crate) fn overrides(&self) -> &[Comp] {
        if self.has_master {
            &self.comps[1..]
        } else {
            &self.comps[..]
        }
    }

    pub(crate) fn component(&self, comp: &Comp) -> &ICalendarComponent {
        &self.cal.components[comp.index]
    }
}

fn component_name(t: &ICalendarComponentType) -> String {
    match t {
        ICalendarComponentType::Other(name) => name.clone(),
        other => other.as_str().to_string(),
    }
}

fn parse_single_calendar(text: &str) -> Result<ICalendar, CalendarError> {
    let mut parser = calcard::Parser::new(text);
    let cal = match parser.entry() {
        calcard::Entry::ICalendar(cal) => cal,
        calcard::Entry::VCard(_) => {
            return Err(CalendarError::NotICalendar("this is a vCard".into()));
        }
        calcard::Entry::InvalidLine(line) => {
            return Err(CalendarError::NotICalendar(format!(
                "unexpected line {:?}",
                truncate(&line)
            )));
        }
        calcard::Entry::UnexpectedComponentEnd { expected, found } => {
            return Err(CalendarError::NotICalendar(format!(
                "END:{} where END:{} was expected",
                component_name(&found),
                component_name(&expected)
            )));
        }
        calcard::Entry::UnterminatedComponent(name) => {
            return Err(CalendarError::NotICalendar(format!(
                "BEGIN:{name} is never ended"
            )));
        }
        calcard::Entry::TooManyComponents => {
            return Err(CalendarError::OverLimit("too many components".into()));
        }
        calcard::Entry::Eof => {
            return Err(CalendarError::NotICalendar("no BEGIN:VCALENDAR".into()));
        }
        _ => return Err(CalendarError::NotICalendar("unrecognised content".into())),
    };
    match parser.entry() {
        calcard::Entry::Eof => Ok(cal),
        calcard::Entry::InvalidLine(line) if line.trim().is_empty() => Ok(cal),
        _ => Err(CalendarError::NotSingleObject(
            "more than one VCALENDAR in the text".into(),
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

fn check_limits(cal: &ICalendar, limits: &Limits) -> Result<(), CalendarError> {
    if cal.components.len() > limits.components_max {
        return Err(CalendarError::OverLimit(format!(
            "{} components, the limit is {}",
            cal.components.len(),
            limits.components_max
        )));
    }
    let properties: usize = cal.components.iter().map(|c| c.entries.len()).sum();
    if properties > limits.properties_max {
        return Err(CalendarError::OverLimit(format!(
            "{properties} properties, the limit is {}",
            limits.properties_max
        )));
    }
    Ok(())
}

fn resolve_zones(
    cal: &ICalendar,
    indices: &[usize],
) -> Result<(Vec<Zone>, Vec<String>), CalendarError> {
    let mut zones = Vec::new();
    let mut ids = Vec::new();
    for i in indices {
        let vtz = &cal.components[*i];
        let Some(tzid) = vtz
            .property(&ICalendarProperty::Tzid)
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_text())
        else {
            return Err(CalendarError::InvalidData("VTIMEZONE without TZID".into()));
        };
        if ids.iter().any(|id| id == tzid) {
            continue;
        }
        zones.push(Zone::from_vtimezone(cal, vtz)?);
        ids.push(tzid.to_string());
    }
    Ok((zones, ids))
}

fn single_uid(cal: &ICalendar, tops: &[usize]) -> Result<String, CalendarError> {
    let mut uid: Option<&str> = None;
    for i in tops {
        let c = &cal.components[*i];
        let this = c.uid().filter(|u| !u.is_empty()).ok_or_else(|| {
            CalendarError::NotSingleObject(format!(
                "a {} has no UID",
                component_name(&c.component_type)
            ))
        })?;
        match uid {
            Some(prev) if prev != this => {
                return Err(CalendarError::NotSingleObject(format!(
                    "several UIDs: {prev} and {this}"
                )));
            }
            _ => uid = Some(this),
        }
    }
    uid.map(str::to_string)
        .ok_or_else(|| CalendarError::NotSingleObject("no component".into()))
}

/// Looks up (or, for a TZID without VTIMEZONE, adds) the zone of an entry.
struct ZoneTable<'a> {
    ids: &'a [String],
}

impl ZoneTable<'_> {
    fn index(&self, entry: &ICalendarEntry) -> Option<usize> {
        let tzid = tzid_of(entry)?;
        self.ids.iter().position(|id| id == tzid)
    }
}

fn date_value(
    entry: &ICalendarEntry,
    zones: &ZoneTable<'_>,
    what: &str,
) -> Result<DateValue, CalendarError> {
    let tz = zones.index(entry);
    match entry.values.first() {
        Some(ICalendarValue::PartialDateTime(p)) => {
            DateValue::from_partial(p, tz).ok_or_else(|| {
                CalendarError::InvalidData(format!("{what} is not a valid date or date-time"))
            })
        }
        Some(ICalendarValue::Text(t)) => Err(CalendarError::InvalidData(format!(
            "{what} {:?} is not a date or date-time",
            truncate(t)
        ))),
        _ => Err(CalendarError::InvalidData(format!("{what} has no value"))),
    }
}

/// A TZID with no VTIMEZONE in the object: an IANA name (RFC 7809 lets
/// clients omit VTIMEZONE) is added to the zone table; anything else stays
/// unresolved and is read as floating — never as UTC.
fn add_bare_tzids(cal: &ICalendar, zones: &mut Vec<Zone>, ids: &mut Vec<String>) {
    for c in &cal.components {
        for entry in &c.entries {
            let Some(tzid) = tzid_of(entry) else { continue };
            if ids.iter().any(|id| id == tzid) {
                continue;
            }
            if let Some(zone) = Zone::iana(tzid) {
                zones.push(zone);
                ids.push(tzid.to_string());
            }
        }
    }
}

fn date_values(entry: &ICalendarEntry, zones: &ZoneTable<'_>) -> Vec<DateValue> {
    let tz = zones.index(entry);
    entry
        .values
        .iter()
        .filter_map(|v| match v {
            ICalendarValue::PartialDateTime(p) => DateValue::from_partial(p, tz),
            _ => None,
        })
        .collect()
}

fn rdate_values(entry: &ICalendarEntry, zones: &ZoneTable<'_>) -> Vec<RDate> {
    let tz = zones.index(entry);
    entry
        .values
        .iter()
        .filter_map(|v| match v {
            ICalendarValue::PartialDateTime(p) => DateValue::from_partial(p, tz).map(RDate::At),
            ICalendarValue::Period(ICalendarPeriod::Range { start, end }) => Some(RDate::Period(
                DateValue::from_partial(start, tz)?,
                PeriodEnd::End(DateValue::from_partial(end, tz)?),
            )),
            ICalendarValue::Period(ICalendarPeriod::Duration { start, duration }) => {
                Some(RDate::Period(
                    DateValue::from_partial(start, tz)?,
                    PeriodEnd::Duration(Dur::from_calcard(duration)),
                ))
            }
            _ => None,
        })
        .collect()
}

fn parse_rrule(entry: &ICalendarEntry) -> Result<Rule, CalendarError> {
    let Some(ICalendarValue::RecurrenceRule(r)) = entry.values.first() else {
        return Err(CalendarError::InvalidData(
            "RRULE is not a valid recurrence rule".into(),
        ));
    };
    let until = match &r.until {
        None => None,
        Some(u) => {
            let dt = u.to_date_time().ok_or_else(|| {
                CalendarError::InvalidData("RRULE UNTIL is not a valid date".into())
            })?;
            Some(if u.hour.is_none() {
                Until::Date(dt.date_time.date())
            } else if dt.offset.is_some() {
                Until::Utc(
                    dt.date_time
                        - chrono::TimeDelta::seconds(i64::from(
                            dt.offset.map_or(0, |o| o.local_minus_utc()),
                        )),
                )
            } else {
                Until::Local(dt.date_time)
            })
        }
    };
    Rule::from_calcard(r, until).map_err(|e| CalendarError::InvalidData(format!("RRULE: {e}")))
}

fn parse_attendee(entry: &ICalendarEntry) -> Option<Attendee> {
    let address = match entry.values.first()? {
        ICalendarValue::Uri(u) => u.as_str()?.to_string(),
        ICalendarValue::Text(t) => t.clone(),
        _ => return None,
    };
    let declined = entry
        .parameters(&ICalendarParameterName::Partstat)
        .any(|p| {
            matches!(
                p,
                ICalendarParameterValue::Partstat(ICalendarParticipationStatus::Declined)
            ) || p
                .as_text()
                .is_some_and(|t| t.eq_ignore_ascii_case("DECLINED"))
        });
    Some(Attendee {
        address: normalise_address(&address),
        declined,
    })
}

/// Calendar-user addresses compare case-insensitively, `mailto:` included.
pub(crate) fn normalise_address(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

fn parse_comp(
    cal: &ICalendar,
    c: &ICalendarComponent,
    index: usize,
    kind: ComponentKind,
    zone_ids: &[String],
    zone_list: &[Zone],
) -> Result<Comp, CalendarError> {
    let zones = ZoneTable { ids: zone_ids };
    let mut comp = Comp {
        index,
        dtstart: None,
        dtend: None,
        duration: None,
        due: None,
        rrules: Vec::new(),
        rdates: Vec::new(),
        exdates: Vec::new(),
        recurrence_id: None,
        this_and_future: false,
        status: Status::Other,
        transparent: false,
        summary: first_text(c, &ICalendarProperty::Summary),
        description: first_text(c, &ICalendarProperty::Description),
        location: first_text(c, &ICalendarProperty::Location),
        attendees: Vec::new(),
        alarms: Vec::new(),
        created: None,
        completed: None,
    };
    for entry in &c.entries {
        match &entry.name {
            ICalendarProperty::Dtstart => {
                comp.dtstart = Some(date_value(entry, &zones, "DTSTART")?)
            }
            ICalendarProperty::Dtend => comp.dtend = Some(date_value(entry, &zones, "DTEND")?),
            ICalendarProperty::Due => comp.due = Some(date_value(entry, &zones, "DUE")?),
            ICalendarProperty::Duration => {
                comp.duration = Some(duration_of(entry).ok_or_else(|| {
                    CalendarError::InvalidData("DURATION is not a duration".into())
                })?);
            }
            ICalendarProperty::Rrule => comp.rrules.push(parse_rrule(entry)?),
            ICalendarProperty::Rdate => comp.rdates.extend(rdate_values(entry, &zones)),
            ICalendarProperty::Exdate => comp.exdates.extend(date_values(entry, &zones)),
            ICalendarProperty::RecurrenceId => {
                comp.recurrence_id = Some(date_value(entry, &zones, "RECURRENCE-ID")?);
                comp.this_and_future = entry.parameters(&ICalendarParameterName::Range).any(|v| {
                    // calcard reads RANGE=THISANDFUTURE as Bool(true).
                    matches!(v, ICalendarParameterValue::Bool(true))
                        || v.as_text()
                            .is_some_and(|t| t.eq_ignore_ascii_case("THISANDFUTURE"))
                });
            }
            ICalendarProperty::Status => {
                comp.status = match entry.values.first() {
                    Some(ICalendarValue::Status(ICalendarStatus::Cancelled)) => Status::Cancelled,
                    Some(ICalendarValue::Status(ICalendarStatus::Tentative)) => Status::Tentative,
                    _ => Status::Other,
                };
            }
            ICalendarProperty::Transp => {
                comp.transparent = matches!(
                    entry.values.first(),
                    Some(ICalendarValue::Transparency(
                        ICalendarTransparency::Transparent
                    ))
                );
            }
            ICalendarProperty::Attendee => comp.attendees.extend(parse_attendee(entry)),
            ICalendarProperty::Created => comp.created = date_value(entry, &zones, "CREATED").ok(),
            ICalendarProperty::Completed => {
                comp.completed = date_value(entry, &zones, "COMPLETED").ok()
            }
            _ => {}
        }
    }
    if kind == ComponentKind::Event && comp.dtstart.is_none() {
        return Err(CalendarError::InvalidData("a VEVENT has no DTSTART".into()));
    }
    if comp.is_recurring() && comp.dtstart.is_none() {
        return Err(CalendarError::InvalidData(
            "a recurring component has no DTSTART".into(),
        ));
    }
    if comp.dtend.is_some() && comp.duration.is_some() {
        return Err(CalendarError::InvalidData("both DTEND and DURATION".into()));
    }
    for id in &c.component_ids {
        let Some(sub) = cal.components.get(*id as usize) else {
            continue;
        };
        if sub.component_type == ICalendarComponentType::VAlarm {
            comp.alarms.push(parse_alarm(sub, &|e| {
                date_value(e, &zones, "TRIGGER")
                    .ok()
                    .map(|v| v.pinned(zone_list))
            })?);
        }
    }
    Ok(comp)
}

/// A per-user overlay: the RECURRENCE-ID (if any) and VALARMs of each
/// component of a VCALENDAR text.
pub(crate) type AlarmSets = (Vec<Zone>, Vec<(Option<DateValue>, Vec<Alarm>)>);

pub(crate) fn parse_alarm_sets(text: &str) -> Result<AlarmSets, CalendarError> {
    let cal = parse_single_calendar(text)?;
    let root = cal
        .components
        .first()
        .ok_or_else(|| CalendarError::NotICalendar("empty".into()))?;
    let timezone_indices: Vec<usize> = root
        .component_ids
        .iter()
        .map(|i| *i as usize)
        .filter(|i| {
            cal.components
                .get(*i)
                .is_some_and(|c| c.component_type == ICalendarComponentType::VTimezone)
        })
        .collect();
    let (mut zones, mut ids) = resolve_zones(&cal, &timezone_indices)?;
    add_bare_tzids(&cal, &mut zones, &mut ids);
    let table = ZoneTable { ids: &ids };
    let mut sets = Vec::new();
    for id in &root.component_ids {
        let Some(c) = cal.components.get(*id as usize) else {
            continue;
        };
        if ComponentKind::of(&c.component_type).is_none() {
            continue;
        }
        let rid = match c.property(&ICalendarProperty::RecurrenceId) {
            Some(e) => Some(date_value(e, &table, "RECURRENCE-ID")?.pinned(&zones)),
            None => None,
        };
        let mut alarms = Vec::new();
        for sub_id in &c.component_ids {
            let Some(sub) = cal.components.get(*sub_id as usize) else {
                continue;
            };
            if sub.component_type == ICalendarComponentType::VAlarm {
                alarms.push(parse_alarm(sub, &|e| {
                    date_value(e, &table, "TRIGGER")
                        .ok()
                        .map(|v| v.pinned(&zones))
                })?);
            }
        }
        sets.push((rid, alarms));
    }
    Ok((zones, sets))
}
