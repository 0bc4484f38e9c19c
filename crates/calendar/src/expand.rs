//! What the dav layer serves from an object's instances: RFC 4791 §9.6.5
//! expand, §9.6.6 limit-recurrence-set, §7.10 free-busy periods, and the
//! time bounds an index stores.
//!
//! Owns: `BusyPeriod`, `BusyKind`, `CalendarObject::{expand,
//! limit_recurrence_set, busy_periods, time_bounds}` and the iCalendar text
//! writer for instances.
//! Must never: produce RRULE/RDATE/EXDATE in expanded output, or an
//! unbounded number of instances (`EXPAND_INSTANCES_MAX`).

use crate::TimeRange;
use crate::instance::Instance;
use crate::instant::{Duration, Instant};
use crate::object::{CalendarObject, ComponentKind, Status};
use crate::zone::Zone;
use calcard::icalendar::{
    ICalendarComponent, ICalendarFreeBusyType, ICalendarParameterName, ICalendarParameterValue,
    ICalendarProperty,
};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Instances one expand or free-busy answer holds at most.
pub const EXPAND_INSTANCES_MAX: usize = 10_000;
/// Instances examined to find a finite series' last end for `time_bounds`.
const BOUNDS_INSTANCES_MAX: usize = 10_000;
/// Widening of floating and all-day times so bounds hold in every zone
/// (UTC offsets run from -12:00 to +14:00).
const FLOATING_WIDEN_SECS: i64 = 14 * 3600;

/// The kind of a busy period (FBTYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BusyKind {
    /// FBTYPE=BUSY
    Busy,
    /// FBTYPE=BUSY-TENTATIVE
    Tentative,
    /// FBTYPE=BUSY-UNAVAILABLE
    Unavailable,
}

/// One busy period, clipped to the requested range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusyPeriod {
    /// Start (UTC).
    pub start: Instant,
    /// End (UTC).
    pub end: Instant,
    /// FBTYPE.
    pub kind: BusyKind,
}

/// Properties replaced by computed values in expanded output.
fn is_time_property(p: &ICalendarProperty) -> bool {
    matches!(
        p,
        ICalendarProperty::Dtstart
            | ICalendarProperty::Dtend
            | ICalendarProperty::Duration
            | ICalendarProperty::Due
            | ICalendarProperty::Rrule
            | ICalendarProperty::Rdate
            | ICalendarProperty::Exdate
            | ICalendarProperty::Exrule
            | ICalendarProperty::RecurrenceId
    )
}

impl CalendarObject {
    /// Instances overlapping `range`, in order, at most `EXPAND_INSTANCES_MAX`.
    pub(crate) fn overlapping<'a>(
        &'a self,
        range: &'a TimeRange,
        zone: &Zone,
    ) -> impl Iterator<Item = Instance> + 'a {
        let lower = range
            .start
            .map_or(Instant::MIN, |s| s.saturating_sub(self.max_span()));
        self.instances_from(zone, lower)
            .take_while(move |i| range.end.is_none_or(|e| i.start < e))
            .filter(move |i| range.overlaps(i.start, i.end))
            .take(EXPAND_INSTANCES_MAX)
    }

    /// RFC 4791 §9.6.5: one component per instance overlapping `range`, with
    /// DTSTART/DTEND/RECURRENCE-ID in UTC (all-day instances keep DATE
    /// values: a date has no UTC form) and no RRULE/RDATE/EXDATE.
    pub fn expand(&self, range: &TimeRange, zone: &Zone) -> String {
        let mut out = String::new();
        self.write_calendar_begin(&mut out);
        for inst in self.overlapping(range, zone) {
            self.write_instance(&mut out, &inst, zone);
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }

    /// RFC 4791 §9.6.6: the master plus only the overrides whose instance or
    /// RECURRENCE-ID overlaps `range`, with the VTIMEZONEs they use.
    pub fn limit_recurrence_set(&self, range: &TimeRange, zone: &Zone) -> String {
        let mut out = String::new();
        self.write_calendar_begin(&mut out);
        for i in &self.timezone_indices {
            self.write_component_tree(&mut out, *i);
        }
        for (idx, comp) in self.comps.iter().enumerate() {
            let keep = match comp.recurrence_id {
                None => true,
                Some(rid) => {
                    let rid_at = rid.instant(&self.zones, zone);
                    range.contains(rid_at)
                        || crate::instance::override_instance_of(self, zone, idx)
                            .is_some_and(|i| range.overlaps(i.start, i.end))
                }
            };
            if keep {
                self.write_component_tree(&mut out, comp.index);
            }
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }

    /// RFC 4791 §7.10: busy periods of VEVENT instances overlapping `range`
    /// (TRANSP:TRANSPARENT and STATUS:CANCELLED skipped, TENTATIVE marked),
    /// and the FREEBUSY periods of VFREEBUSY components; clipped to `range`.
    pub fn busy_periods(&self, range: &TimeRange, zone: &Zone) -> Vec<BusyPeriod> {
        let clip = |s: Instant, e: Instant, kind| BusyPeriod {
            start: range.start.map_or(s, |r| s.max(r)),
            end: range.end.map_or(e, |r| e.min(r)),
            kind,
        };
        match self.kind {
            ComponentKind::Event => self
                .overlapping(range, zone)
                .filter(|i| !i.cancelled && !self.comps[i.comp].transparent)
                .filter(|i| i.end > i.start)
                .map(|i| {
                    let kind = if self.comps[i.comp].status == Status::Tentative {
                        BusyKind::Tentative
                    } else {
                        BusyKind::Busy
                    };
                    clip(i.start, i.end, kind)
                })
                .collect(),
            ComponentKind::FreeBusy => self.freebusy_properties(range, zone, &clip),
            _ => Vec::new(),
        }
    }

    fn freebusy_properties(
        &self,
        range: &TimeRange,
        zone: &Zone,
        clip: &dyn Fn(Instant, Instant, BusyKind) -> BusyPeriod,
    ) -> Vec<BusyPeriod> {
        let mut out = Vec::new();
        for comp in &self.comps {
            for e in self
                .component(comp)
                .entries
                .iter()
                .filter(|e| e.name == ICalendarProperty::Freebusy)
            {
                let kind = match e.parameters(&ICalendarParameterName::Fbtype).next() {
                    Some(ICalendarParameterValue::Fbtype(ICalendarFreeBusyType::Free)) => continue,
                    Some(ICalendarParameterValue::Fbtype(ICalendarFreeBusyType::BusyTentative)) => {
                        BusyKind::Tentative
                    }
                    Some(ICalendarParameterValue::Fbtype(
                        ICalendarFreeBusyType::BusyUnavailable,
                    )) => BusyKind::Unavailable,
                    _ => BusyKind::Busy,
                };
                for v in &e.values {
                    if let Some((s, end)) = crate::filter::period_of(self, v, zone)
                        && range.overlaps(s, end)
                    {
                        out.push(clip(s, end, kind));
                    }
                }
            }
        }
        out.sort_by_key(|p| (p.start, p.end));
        out
    }

    /// Bounds of every instance in UTC for an index, valid whatever the
    /// calendar zone (floating and all-day times widened by ±14 h); `None`
    /// is unbounded on that side.
    pub fn time_bounds(&self) -> (Option<Instant>, Option<Instant>) {
        let utc = Zone::utc();
        let floating = self
            .comps
            .iter()
            .any(|c| c.anchor().is_some_and(|a| a.is_floating_or_date()));
        let widen = Duration::from_secs(if floating { FLOATING_WIDEN_SECS } else { 0 });
        let mut it = self.instances_from(&utc, Instant::MIN);
        let Some(first) = it.next() else {
            return (None, None);
        };
        let mut start = first.start;
        let mut end = first.end;
        // An RRULE without COUNT or UNTIL never ends: no need to walk it.
        let endless_rule = self.master().is_some_and(|m| {
            m.rrules
                .iter()
                .any(|r| r.count.is_none() && r.until.is_none())
        });
        let examined = if endless_rule {
            0
        } else {
            BOUNDS_INSTANCES_MAX
        };
        for inst in it.by_ref().take(examined) {
            start = start.min(inst.start);
            end = end.max(inst.end);
        }
        let finite = !endless_rule && it.next().is_none();
        (
            Some(start.saturating_sub(widen)),
            finite.then(|| end.saturating_add(widen)),
        )
    }

    fn write_calendar_begin(&self, out: &mut String) {
        out.push_str("BEGIN:VCALENDAR\r\n");
        if let Some(root) = self.cal.components.first() {
            for e in root.entries.iter().filter(|e| {
                matches!(
                    e.name,
                    ICalendarProperty::Version
                        | ICalendarProperty::Prodid
                        | ICalendarProperty::Calscale
                )
            }) {
                let _ = e.write_to(out);
            }
        }
    }

    /// Writes a component and its sub-components as they are.
    fn write_component_tree(&self, out: &mut String, index: usize) {
        let Some(c) = self.cal.components.get(index) else {
            return;
        };
        let name = component_name(c);
        let _ = write!(out, "BEGIN:{name}\r\n");
        for e in &c.entries {
            let _ = e.write_to(out);
        }
        self.write_children(out, c);
        let _ = write!(out, "END:{name}\r\n");
    }

    fn write_children(&self, out: &mut String, c: &ICalendarComponent) {
        for id in &c.component_ids {
            // Depth is bounded by the parse-time component limit.
            self.write_component_tree(out, *id as usize);
        }
    }

    fn write_instance(&self, out: &mut String, inst: &Instance, zone: &Zone) {
        let comp = &self.comps[inst.comp];
        let c = self.component(comp);
        let name = component_name(c);
        let _ = write!(out, "BEGIN:{name}\r\n");
        for e in c.entries.iter().filter(|e| !is_time_property(&e.name)) {
            let _ = e.write_to(out);
        }
        let date = |t: Instant| zone.to_local(t).format("%Y%m%d").to_string();
        if comp.dtstart.is_some() {
            if inst.all_day {
                let _ = write!(out, "DTSTART;VALUE=DATE:{}\r\n", date(inst.start));
            } else {
                let _ = write!(out, "DTSTART:{}\r\n", inst.start.to_ical_utc());
            }
        }
        let end_name = if comp.due.is_some() { "DUE" } else { "DTEND" };
        if comp.dtend.is_some()
            || comp.duration.is_some()
            || comp.due.is_some()
            || (inst.all_day && inst.end > inst.start)
        {
            if inst.all_day {
                let _ = write!(out, "{end_name};VALUE=DATE:{}\r\n", date(inst.end));
            } else {
                let _ = write!(out, "{end_name}:{}\r\n", inst.end.to_ical_utc());
            }
        }
        if let Some(rid) = &inst.recurrence_id {
            let value = if rid.len() == 8 { ";VALUE=DATE" } else { "" };
            let _ = write!(out, "RECURRENCE-ID{value}:{rid}\r\n");
        }
        self.write_children(out, c);
        let _ = write!(out, "END:{name}\r\n");
    }
}

fn component_name(c: &ICalendarComponent) -> String {
    match &c.component_type {
        calcard::icalendar::ICalendarComponentType::Other(n) => n.clone(),
        other => other.as_str().to_string(),
    }
}
