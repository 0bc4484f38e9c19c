//! Instances: a calendar object's recurrence set with EXDATE, RDATE,
//! overrides (moved, cancelled, RANGE=THISANDFUTURE) applied, in start
//! order, lazily, from any point in time.
//!
//! Owns: `Instance` and the lazy `Instances` iterator behind
//! `CalendarObject::instances_from`.
//! Must never: pair an override with its instance by anything but
//! RECURRENCE-ID (SEQUENCE is ignored: clients bump it on every edit — issue
//! 3, calcard pitfall (a)); cap the number of instances (loops end with the
//! rule, whose own loops have named bounds); materialise the whole set.
//!
//! Ordering: instances come in (start, recurrence id) order. A rule time in
//! a DST gap is shifted forward by the gap and may therefore belong after
//! later rule times; a small reorder heap puts it in place. Two instances at
//! the same start with the same recurrence id are one (RFC 5545: duplicate
//! instances are recognised once).

use crate::instant::{Duration, Instant};
use crate::object::{CalendarObject, Comp, PeriodEnd, RDate, Status};
use crate::rrule::{RuleIter, Until};
use crate::value::DateValue;
use crate::zone::Zone;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::iter::Peekable;

/// Slack when turning an instant into a rule's local starting point, so
/// that no zone offset or DST shift can make the rule start too late.
const LOCAL_SLACK_DAYS: i64 = 2;

/// One instance of a calendar object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Start (UTC).
    pub start: Instant,
    /// End (UTC); equal to `start` for a zero-length instance.
    pub end: Instant,
    /// RECURRENCE-ID as RFC 5545 text, UTC (`…Z`) or DATE; `None` for a
    /// non-recurring object.
    pub recurrence_id: Option<String>,
    /// True when the instance starts on a DATE (all-day).
    pub all_day: bool,
    /// True when an override component supplies the instance.
    pub is_override: bool,
    /// True when the instance's component has STATUS:CANCELLED.
    pub cancelled: bool,
    /// The original start (the RECURRENCE-ID as an instant).
    pub(crate) rid: Option<Instant>,
    /// Index into `CalendarObject::comps` of the component that supplies
    /// the instance's properties.
    pub(crate) comp: usize,
}

impl Instance {
    pub(crate) fn key(&self) -> (Instant, Option<Instant>) {
        (self.start, self.rid)
    }
}

/// The end of an instance of `comp` that starts at `start` (`local` in `zone`).
pub(crate) fn instance_end(
    obj: &CalendarObject,
    comp: &Comp,
    start: Instant,
    local: NaiveDateTime,
    zone: &Zone,
) -> Instant {
    let Some(anchor) = comp.anchor() else {
        return start;
    };
    if let Some(dur) = comp.duration {
        return dur.add_to(local, zone).max(start);
    }
    let end_value = comp.dtend.or(if comp.dtstart.is_some() {
        comp.due
    } else {
        None
    });
    match end_value {
        Some(end) if anchor.is_date() && end.is_date() => {
            let days = (end.local().date() - anchor.local().date())
                .num_days()
                .max(0);
            zone.to_instant(local + TimeDelta::days(days)).max(start)
        }
        Some(end) => {
            let exact = end
                .instant(&obj.zones, zone)
                .since(anchor.instant(&obj.zones, zone));
            start.saturating_add(exact).max(start)
        }
        None if anchor.is_date() && comp.dtstart.is_some() => {
            zone.to_instant(local + TimeDelta::days(1))
        }
        None => start,
    }
}

/// RECURRENCE-ID text for an original start.
fn rid_text(is_date: bool, rid_local: NaiveDateTime, rid: Instant) -> String {
    if is_date {
        rid_local.format("%Y%m%d").to_string()
    } else {
        rid.to_ical_utc()
    }
}

fn value_rid_text(v: &DateValue, rid: Instant) -> String {
    rid_text(v.is_date(), v.local(), rid)
}

/// A raw occurrence of the master before overrides are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Raw {
    rid: Instant,
    local: NaiveDateTime,
    period_end: Option<Instant>,
    gap_shifted: bool,
}

/// A THISANDFUTURE override: from `rid` on, instances move by `delta` on
/// the wall clock (a meeting moved from 09:00 to 14:00 "from now on" stays
/// at 14:00 local after a DST change) and take the override's properties
/// and length.
#[derive(Clone, Copy, Debug)]
struct FutureRange {
    rid: Instant,
    delta: TimeDelta,
    comp: usize,
}

/// Extra room in the reorder heap when THISANDFUTURE shifts are applied on
/// the wall clock (a DST change moves them by up to this much).
const WALL_CLOCK_SHIFT_SLACK_SECS: i64 = 3 * 3600;

/// An occurrence waiting in the reorder heap: (start, original start,
/// supplying component, original local time, RDATE period end).
type Pending = (Instant, Instant, usize, NaiveDateTime, Option<Instant>);

/// The master's occurrences with EXDATE, overrides and THISANDFUTURE applied.
struct MasterStream<'o> {
    obj: &'o CalendarObject,
    zone: Zone,
    anchor_zone: Zone,
    anchor: DateValue,
    recurring: bool,
    rules: Vec<Peekable<RuleIter<'o>>>,
    rdates: Vec<Raw>,
    rdate_pos: usize,
    exdates: Vec<Instant>,
    exdate_days: Vec<NaiveDate>,
    overridden: Vec<Instant>,
    ranges: Vec<FutureRange>,
    delta_spread: Duration,
    heap: BinaryHeap<Reverse<Pending>>,
    threshold: Option<Instant>,
    last_rid: Option<Instant>,
    raw_done: bool,
}

impl<'o> MasterStream<'o> {
    fn new(obj: &'o CalendarObject, zone: &Zone, lower: Instant) -> Option<MasterStream<'o>> {
        let master = obj.master()?;
        let anchor = master.anchor()?;
        let anchor_zone = anchor.zone(&obj.zones, zone);
        let dtstart_local = anchor.local();
        let overridden: Vec<Instant> = {
            let mut v: Vec<Instant> = obj
                .overrides()
                .iter()
                .filter_map(|c| c.recurrence_id.map(|r| r.instant(&obj.zones, zone)))
                .collect();
            v.sort_unstable();
            v
        };
        let mut ranges: Vec<FutureRange> = obj
            .comps
            .iter()
            .enumerate()
            .filter(|(_, c)| c.this_and_future)
            .filter_map(|(i, c)| {
                let rid_value = c.recurrence_id?;
                let rid = rid_value.instant(&obj.zones, zone);
                let delta = c.anchor()?.local() - rid_value.local();
                Some(FutureRange {
                    rid,
                    delta,
                    comp: i,
                })
            })
            .collect();
        ranges.sort_by_key(|r| r.rid);
        let to_duration = |d: TimeDelta| Duration::from_millis(d.num_milliseconds());
        let max_delta = ranges
            .iter()
            .map(|r| to_duration(r.delta))
            .max()
            .unwrap_or(Duration::ZERO)
            .max(Duration::ZERO);
        let min_delta = ranges
            .iter()
            .map(|r| to_duration(r.delta))
            .min()
            .unwrap_or(Duration::ZERO)
            .min(Duration::ZERO);
        let slack = if ranges.is_empty() {
            0
        } else {
            WALL_CLOCK_SHIFT_SLACK_SECS
        };
        let from_local = anchor_zone.to_local(
            lower
                .saturating_sub(max_delta)
                .saturating_sub(Duration::from_secs(slack)),
        ) - TimeDelta::days(LOCAL_SLACK_DAYS);
        let rules = master
            .rrules
            .iter()
            .map(|rule| {
                let until = rule.until.map(|u| match u {
                    Until::Utc(t) => anchor_zone.to_local(Instant::from_naive_utc(t)),
                    Until::Local(t) => t,
                    Until::Date(d) => d.and_time(NaiveTime::MIN),
                });
                RuleIter::new(rule, dtstart_local, until, from_local).peekable()
            })
            .collect();
        let mut rdates = vec![Raw {
            rid: anchor.instant(&obj.zones, zone),
            local: dtstart_local,
            period_end: None,
            gap_shifted: false,
        }];
        for r in &master.rdates {
            rdates.push(rdate_raw(obj, zone, r));
        }
        rdates.sort();
        let mut exdates: Vec<Instant> = master
            .exdates
            .iter()
            .filter(|e| !e.is_date())
            .map(|e| e.instant(&obj.zones, zone))
            .collect();
        exdates.sort_unstable();
        let exdate_days = master
            .exdates
            .iter()
            .filter(|e| e.is_date())
            .map(|e| e.local().date())
            .collect();
        Some(MasterStream {
            obj,
            zone: zone.clone(),
            anchor_zone,
            anchor,
            recurring: master.is_recurring(),
            rules,
            rdates,
            rdate_pos: 0,
            exdates,
            exdate_days,
            overridden,
            ranges,
            delta_spread: max_delta
                .saturating_sub(min_delta)
                .saturating_add_secs(slack),
            heap: BinaryHeap::new(),
            threshold: None,
            last_rid: None,
            raw_done: false,
        })
    }

    /// The next raw occurrence in rule order (rules and RDATEs merged).
    fn next_raw(&mut self) -> Option<Raw> {
        let rule_idx = self
            .rules
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.peek().map(|t| (*t, i)))
            .min()
            .map(|(_, i)| i);
        let rule_raw = rule_idx
            .and_then(|i| self.rules[i].peek().copied())
            .map(|local| {
                let rid = self.anchor_zone.to_instant(local);
                Raw {
                    rid,
                    local,
                    period_end: None,
                    gap_shifted: self.anchor_zone.to_local(rid) != local,
                }
            });
        let rdate_raw = self.rdates.get(self.rdate_pos).copied();
        match (rule_raw, rdate_raw) {
            (Some(r), Some(d)) if d.rid <= r.rid => {
                self.rdate_pos += 1;
                Some(d)
            }
            (Some(r), _) => {
                if let Some(i) = rule_idx {
                    self.rules[i].next();
                }
                Some(r)
            }
            (None, Some(d)) => {
                self.rdate_pos += 1;
                Some(d)
            }
            (None, None) => None,
        }
    }

    fn excluded(&self, raw: &Raw) -> bool {
        self.exdates.binary_search(&raw.rid).is_ok()
            || self.exdate_days.contains(&raw.local.date())
            || self.overridden.binary_search(&raw.rid).is_ok()
    }

    /// Pushes one raw occurrence through EXDATE/override/THISANDFUTURE.
    fn push(&mut self, raw: Raw) {
        if self.excluded(&raw) {
            return;
        }
        let range = self.ranges.iter().rev().find(|r| r.rid <= raw.rid).copied();
        let (start, comp) = match range {
            Some(r) => (self.anchor_zone.to_instant(raw.local + r.delta), r.comp),
            None => (raw.rid, 0),
        };
        // An RDATE period keeps its own length wherever it is moved to.
        let period_end = raw
            .period_end
            .map(|end| start.saturating_add(end.since(raw.rid)));
        self.heap
            .push(Reverse((start, raw.rid, comp, raw.local, period_end)));
        if !raw.gap_shifted {
            self.threshold = Some(start.saturating_sub(self.delta_spread));
        }
    }

    fn pop(&mut self) -> Option<Instance> {
        let Reverse((start, rid, comp_idx, local, period_end)) = self.heap.pop()?;
        let comp = &self.obj.comps[comp_idx];
        let end = match period_end {
            Some(end) => end,
            None => {
                let start_local = if comp_idx == 0 {
                    local
                } else {
                    self.anchor_zone.to_local(start)
                };
                instance_end(
                    self.obj,
                    comp,
                    start,
                    start_local,
                    &self.anchor_zone_for(comp),
                )
            }
        };
        Some(Instance {
            start,
            end,
            recurrence_id: self
                .recurring
                .then(|| rid_text(self.anchor.is_date(), local, rid)),
            all_day: self.anchor.is_date(),
            is_override: comp_idx != 0,
            cancelled: comp.status == Status::Cancelled,
            rid: self.recurring.then_some(rid),
            comp: comp_idx,
        })
    }

    fn anchor_zone_for(&self, comp: &Comp) -> Zone {
        comp.anchor().map_or_else(
            || self.anchor_zone.clone(),
            |a| a.zone(&self.obj.zones, &self.zone),
        )
    }
}

impl Iterator for MasterStream<'_> {
    type Item = Instance;

    fn next(&mut self) -> Option<Instance> {
        // Bounded: each pass pops the heap or consumes one raw occurrence, and
        // the rules behind them end by their own named bounds (rrule.rs).
        loop {
            if let Some(Reverse((start, rid, ..))) = self.heap.peek() {
                let ready = self.raw_done || self.threshold.is_some_and(|t| *start <= t);
                if ready {
                    let rid = *rid;
                    let instance = self.pop();
                    if self.last_rid == Some(rid) {
                        continue;
                    }
                    self.last_rid = Some(rid);
                    return instance;
                }
            } else if self.raw_done {
                return None;
            }
            match self.next_raw() {
                Some(raw) => self.push(raw),
                None => self.raw_done = true,
            }
        }
    }
}

fn rdate_raw(obj: &CalendarObject, zone: &Zone, r: &RDate) -> Raw {
    match r {
        RDate::At(v) => Raw {
            rid: v.instant(&obj.zones, zone),
            local: v.local(),
            period_end: None,
            gap_shifted: false,
        },
        RDate::Period(v, end) => {
            let rid = v.instant(&obj.zones, zone);
            let end = match end {
                PeriodEnd::End(e) => e.instant(&obj.zones, zone),
                PeriodEnd::Duration(d) => d.add_to(v.local(), &v.zone(&obj.zones, zone)),
            };
            Raw {
                rid,
                local: v.local(),
                period_end: Some(end.max(rid)),
                gap_shifted: false,
            }
        }
    }
}

/// All instances of `obj` with start at or after `lower`, in order.
pub(crate) struct Instances<'o> {
    master: Option<Peekable<MasterStream<'o>>>,
    overrides: Vec<Instance>,
    override_pos: usize,
    lower: Instant,
    last: Option<(Instant, Option<Instant>)>,
}

impl<'o> Instances<'o> {
    pub(crate) fn new(obj: &'o CalendarObject, zone: &Zone, lower: Instant) -> Instances<'o> {
        let mut overrides: Vec<Instance> = obj
            .comps
            .iter()
            .enumerate()
            .filter(|(_, c)| c.recurrence_id.is_some())
            .filter_map(|(i, c)| override_instance(obj, zone, c, i))
            .filter(|inst| inst.start >= lower)
            .collect();
        overrides.sort_by_key(|i| i.key());
        Instances {
            master: MasterStream::new(obj, zone, lower).map(Iterator::peekable),
            overrides,
            override_pos: 0,
            lower,
            last: None,
        }
    }
}

/// The instance an override component stands for (its own DTSTART), without
/// walking the series: for filters and limit-recurrence-set.
pub(crate) fn override_instance_of(
    obj: &CalendarObject,
    zone: &Zone,
    comp: usize,
) -> Option<Instance> {
    override_instance(obj, zone, obj.comps.get(comp)?, comp)
}

fn override_instance(obj: &CalendarObject, zone: &Zone, c: &Comp, comp: usize) -> Option<Instance> {
    let rid_value = c.recurrence_id?;
    let rid = rid_value.instant(&obj.zones, zone);
    let anchor = c.anchor().unwrap_or(rid_value);
    let anchor_zone = anchor.zone(&obj.zones, zone);
    let start = anchor.instant(&obj.zones, zone);
    Some(Instance {
        start,
        end: instance_end(obj, c, start, anchor.local(), &anchor_zone),
        recurrence_id: Some(value_rid_text(&rid_value, rid)),
        all_day: anchor.is_date(),
        is_override: true,
        cancelled: c.status == Status::Cancelled,
        rid: Some(rid),
        comp,
    })
}

impl Iterator for Instances<'_> {
    type Item = Instance;

    fn next(&mut self) -> Option<Instance> {
        // Bounded: each pass consumes one instance from a stream that ends
        // (skipped ones lie within LOCAL_SLACK_DAYS of `lower`, or are duplicates).
        loop {
            let from_master = match (
                self.master.as_mut().and_then(|m| m.peek()),
                self.overrides.get(self.override_pos),
            ) {
                (Some(m), Some(o)) => m.key() <= o.key(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let next = if from_master {
                self.master.as_mut().and_then(|m| m.next())
            } else {
                self.override_pos += 1;
                self.overrides.get(self.override_pos - 1).cloned()
            };
            let instance = next?;
            if instance.start < self.lower || self.last == Some(instance.key()) {
                continue;
            }
            self.last = Some(instance.key());
            return Some(instance);
        }
    }
}

impl CalendarObject {
    /// Instances in start order from `from` (those starting at or after it);
    /// lazy, with no cap. Floating and all-day times are read in `zone`.
    pub fn instances_from(
        &self,
        zone: &Zone,
        from: Instant,
    ) -> impl Iterator<Item = Instance> + '_ {
        Instances::new(self, zone, from)
    }

    /// The widest instance length over all components, for turning "ends
    /// after t" into "starts after t - span".
    pub(crate) fn max_span(&self) -> Duration {
        let mut span = Duration::from_secs(2 * 86_400);
        for c in &self.comps {
            if let Some(d) = c.duration {
                span = span.max(d.exact().saturating_add_secs(2 * 86_400));
            }
            if let (Some(a), Some(e)) = (c.anchor(), c.dtend.or(c.due)) {
                let exact = (e.local() - a.local()).num_seconds();
                span = span.max(Duration::from_secs(exact.saturating_add(2 * 86_400)));
            }
            for r in &c.rdates {
                if let RDate::Period(s, PeriodEnd::End(e)) = r {
                    span = span.max(Duration::from_secs(
                        (e.local() - s.local())
                            .num_seconds()
                            .saturating_add(2 * 86_400),
                    ));
                }
                if let RDate::Period(_, PeriodEnd::Duration(d)) = r {
                    span = span.max(d.exact().saturating_add_secs(2 * 86_400));
                }
            }
        }
        span
    }
}
