//! RFC 4791 calendar-query filters: the plain data the dav crate parses XML
//! into, and their evaluation against a calendar object.
//!
//! Owns: `CompFilter`, `PropFilter`, `ParamFilter`, `TextMatch`,
//! `Collation`, and `CalendarObject::matches` (§9.7 filters, §9.9
//! time-range against expanded instances, overrides and zones included).
//! Must never: parse XML (only the dav protocol layer knows XML).

use crate::TimeRange;
use crate::alarm::{ALARM_INSTANCES_MAX, Trigger, parse_alarm, relative_trigger};
use crate::instance::Instance;
use crate::instant::{Duration, Instant};
use crate::object::{CalendarObject, Comp, ComponentKind};
use crate::value::DateValue;
use crate::zone::Zone;
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameter,
    ICalendarParameterName, ICalendarPeriod, ICalendarProperty, ICalendarValue,
};

/// RFC 4790 collations supported by text-match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Collation {
    /// i;ascii-casemap (the default): ASCII letters compare case-insensitively.
    #[default]
    AsciiCasemap,
    /// i;octet: bytes compare exactly.
    Octet,
    /// i;unicode-casemap (RFC 5051), approximated by Unicode lower-casing.
    UnicodeCasemap,
}

/// CALDAV:text-match: a substring test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextMatch {
    /// The substring looked for.
    pub text: String,
    /// How characters compare.
    pub collation: Collation,
    /// negate-condition="yes".
    pub negate: bool,
}

impl TextMatch {
    /// Whether `value` contains the text (inverted by `negate`).
    pub fn matches(&self, value: &str) -> bool {
        let found = match self.collation {
            Collation::Octet => value.contains(&self.text),
            Collation::AsciiCasemap => value
                .to_ascii_lowercase()
                .contains(&self.text.to_ascii_lowercase()),
            Collation::UnicodeCasemap => value.to_lowercase().contains(&self.text.to_lowercase()),
        };
        found != self.negate
    }
}

/// CALDAV:comp-filter.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompFilter {
    /// Component name (VCALENDAR, VEVENT, VALARM…).
    pub name: String,
    /// CALDAV:is-not-defined.
    pub is_not_defined: bool,
    /// CALDAV:time-range.
    pub time_range: Option<TimeRange>,
    /// Property filters, all of which must match.
    pub prop_filters: Vec<PropFilter>,
    /// Nested component filters, all of which must match.
    pub comp_filters: Vec<CompFilter>,
}

/// CALDAV:prop-filter.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PropFilter {
    /// Property name.
    pub name: String,
    /// CALDAV:is-not-defined.
    pub is_not_defined: bool,
    /// CALDAV:time-range on a DATE or DATE-TIME property.
    pub time_range: Option<TimeRange>,
    /// CALDAV:text-match on the value.
    pub text_match: Option<TextMatch>,
    /// Parameter filters, all of which must match.
    pub param_filters: Vec<ParamFilter>,
}

/// CALDAV:param-filter.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParamFilter {
    /// Parameter name.
    pub name: String,
    /// CALDAV:is-not-defined.
    pub is_not_defined: bool,
    /// CALDAV:text-match on the value.
    pub text_match: Option<TextMatch>,
}

fn component_name(t: &ICalendarComponentType) -> &str {
    match t {
        ICalendarComponentType::Other(n) => n,
        other => other.as_str(),
    }
}

fn property_name(p: &ICalendarProperty) -> &str {
    match p {
        ICalendarProperty::Other(n) => n,
        other => other.as_str(),
    }
}

/// The text after the first unquoted ':' of a serialised content line, unfolded.
fn value_of_line(line: &str) -> String {
    let unfolded = line.replace("\r\n ", "").replace("\r\n\t", "");
    let mut quoted = false;
    for (i, ch) in unfolded.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ':' if !quoted => return unfolded[i + 1..].trim_end_matches(['\r', '\n']).to_string(),
            _ => {}
        }
    }
    String::new()
}

/// A property's value as text: TEXT values unescaped, others as written.
pub(crate) fn entry_value_text(entry: &ICalendarEntry) -> String {
    let texts: Vec<&str> = entry.values.iter().filter_map(|v| v.as_text()).collect();
    if !texts.is_empty() && texts.len() == entry.values.len() {
        return texts.join(",");
    }
    let mut line = String::new();
    if entry.write_to(&mut line).is_err() {
        return String::new();
    }
    value_of_line(&line)
}

fn param_value_text(param: &ICalendarParameter) -> String {
    if let Some(t) = param.value.as_text() {
        return t.to_string();
    }
    let probe = ICalendarEntry {
        name: ICalendarProperty::Other("X".into()),
        params: vec![param.clone()],
        values: Vec::new(),
    };
    let mut line = String::new();
    if probe.write_to(&mut line).is_err() {
        return String::new();
    }
    let line = line.trim_end_matches(['\r', '\n', ':']);
    line.split_once('=')
        .map(|(_, v)| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

fn param_name(n: &ICalendarParameterName) -> &str {
    match n {
        ICalendarParameterName::Other(s) => s,
        other => other.as_str(),
    }
}

/// What a filter is evaluated against: one component of the object.
struct Ctx<'o> {
    obj: &'o CalendarObject,
    zone: &'o Zone,
}

impl CalendarObject {
    /// RFC 4791 §9.7 filter evaluation; `filter` is the top VCALENDAR
    /// comp-filter. Floating and all-day times are read in `zone`.
    pub fn matches(&self, filter: &CompFilter, zone: &Zone) -> bool {
        if !filter.name.eq_ignore_ascii_case("VCALENDAR") {
            return false;
        }
        if filter.is_not_defined {
            return false;
        }
        let ctx = Ctx { obj: self, zone };
        let Some(root) = self.cal.components.first() else {
            return false;
        };
        filter
            .prop_filters
            .iter()
            .all(|p| ctx.prop_matches(root, p))
            && filter.comp_filters.iter().all(|c| ctx.top_comp_matches(c))
    }
}

impl Ctx<'_> {
    fn top_comp_matches(&self, f: &CompFilter) -> bool {
        if f.name.eq_ignore_ascii_case("VTIMEZONE") {
            let present = !self.obj.timezone_indices.is_empty();
            if f.is_not_defined {
                return !present;
            }
            return self.obj.timezone_indices.iter().any(|i| {
                let c = &self.obj.cal.components[*i];
                f.time_range.is_none() && self.plain_matches(c, f)
            });
        }
        let named = f.name.eq_ignore_ascii_case(self.obj.kind.name());
        if f.is_not_defined {
            return !named;
        }
        named
            && self.obj.comps.iter().enumerate().any(|(i, comp)| {
                let c = self.obj.component(comp);
                f.time_range.is_none_or(|r| self.comp_in_range(i, comp, &r))
                    && f.prop_filters.iter().all(|p| self.prop_matches(c, p))
                    && f.comp_filters
                        .iter()
                        .all(|sub| self.sub_matches(i, comp, c, sub))
            })
    }

    /// Prop and nested comp filters of a component with no time semantics.
    fn plain_matches(&self, c: &ICalendarComponent, f: &CompFilter) -> bool {
        f.prop_filters.iter().all(|p| self.prop_matches(c, p))
            && f.comp_filters.iter().all(|sub| {
                let mut subs = self.children(c, &sub.name);
                if sub.is_not_defined {
                    return subs.next().is_none();
                }
                subs.any(|s| sub.time_range.is_none() && self.plain_matches(s, sub))
            })
    }

    fn children<'c>(
        &'c self,
        c: &'c ICalendarComponent,
        name: &'c str,
    ) -> impl Iterator<Item = &'c ICalendarComponent> + 'c {
        c.component_ids
            .iter()
            .filter_map(|id| self.obj.cal.components.get(*id as usize))
            .filter(move |s| component_name(&s.component_type).eq_ignore_ascii_case(name))
    }

    fn sub_matches(
        &self,
        comp_idx: usize,
        comp: &Comp,
        c: &ICalendarComponent,
        f: &CompFilter,
    ) -> bool {
        let mut subs = self.children(c, &f.name);
        if f.is_not_defined {
            return subs.next().is_none();
        }
        subs.any(|s| {
            let timed = match f.time_range {
                None => true,
                Some(r) if s.component_type == ICalendarComponentType::VAlarm => {
                    self.alarm_in_range(comp_idx, comp, s, &r)
                }
                Some(_) => false,
            };
            timed
                && self.plain_matches(
                    s,
                    &CompFilter {
                        time_range: None,
                        ..f.clone()
                    },
                )
        })
    }

    /// The instances a component supplies, overlapping or near `range`.
    fn comp_instances<'a>(
        &'a self,
        comp_idx: usize,
        range: &TimeRange,
        lead: Duration,
    ) -> impl Iterator<Item = Instance> + 'a {
        let lower = range.start.map_or(Instant::MIN, |s| {
            s.saturating_sub(self.obj.max_span()).saturating_sub(lead)
        });
        let end = range.end.map(|e| e.saturating_add(lead));
        // A plain override stands for one instance: no need to walk the
        // series to find it (a THISANDFUTURE one supplies many).
        let single = self
            .obj
            .comps
            .get(comp_idx)
            .is_some_and(|c| c.recurrence_id.is_some() && !c.this_and_future);
        let walked = (!single).then(|| {
            self.obj
                .instances_from(self.zone, lower)
                .take(ALARM_INSTANCES_MAX)
                .take_while(move |i| end.is_none_or(|e| i.start <= e))
                .filter(move |i| i.comp == comp_idx)
        });
        let own = if single {
            crate::instance::override_instance_of(self.obj, self.zone, comp_idx)
        } else {
            None
        };
        walked.into_iter().flatten().chain(own)
    }

    fn comp_in_range(&self, comp_idx: usize, comp: &Comp, range: &TimeRange) -> bool {
        match self.obj.kind {
            ComponentKind::Event | ComponentKind::Journal | ComponentKind::Availability => self
                .comp_instances(comp_idx, range, Duration::ZERO)
                .any(|i| range.overlaps(i.start, i.end)),
            ComponentKind::Todo => self.todo_in_range(comp_idx, comp, range),
            ComponentKind::FreeBusy => self.freebusy_in_range(comp, range),
        }
    }

    /// RFC 4791 §9.9, the VTODO table.
    fn todo_in_range(&self, comp_idx: usize, comp: &Comp, r: &TimeRange) -> bool {
        let le = |a: Option<Instant>, b: Instant| a.is_none_or(|a| a <= b);
        let lt = |a: Option<Instant>, b: Instant| a.is_none_or(|a| a < b);
        let gt = |a: Option<Instant>, b: Instant| a.is_none_or(|a| a > b);
        let ge = |a: Option<Instant>, b: Instant| a.is_none_or(|a| a >= b);
        if comp.anchor().is_some() {
            let has_start = comp.dtstart.is_some();
            let has_end = comp.due.is_some() || comp.duration.is_some();
            return self.comp_instances(comp_idx, r, Duration::ZERO).any(|i| {
                match (has_start, has_end) {
                    (true, true) if comp.duration.is_some() => {
                        le(r.start, i.end) && (gt(r.end, i.start) || ge(r.end, i.end))
                    }
                    (true, true) => {
                        (lt(r.start, i.end) || le(r.start, i.start))
                            && (gt(r.end, i.start) || ge(r.end, i.end))
                    }
                    (true, false) => le(r.start, i.start) && gt(r.end, i.start),
                    _ => lt(r.start, i.start) && ge(r.end, i.start),
                }
            });
        }
        let at = |v: &Option<DateValue>| v.map(|v| v.instant(&self.obj.zones, self.zone));
        match (at(&comp.completed), at(&comp.created)) {
            (Some(done), Some(made)) => {
                (le(r.start, made) || le(r.start, done)) && (ge(r.end, made) || ge(r.end, done))
            }
            (Some(done), None) => le(r.start, done) && ge(r.end, done),
            (None, Some(made)) => gt(r.end, made),
            (None, None) => true,
        }
    }

    fn freebusy_in_range(&self, comp: &Comp, r: &TimeRange) -> bool {
        let c = self.obj.component(comp);
        let at = |v: DateValue| v.instant(&self.obj.zones, self.zone);
        let mut any_period = false;
        for e in c
            .entries
            .iter()
            .filter(|e| e.name == ICalendarProperty::Freebusy)
        {
            for v in &e.values {
                if let Some((s, end)) = self.period(v) {
                    any_period = true;
                    if r.overlaps(s, end) {
                        return true;
                    }
                }
            }
        }
        if any_period {
            return false;
        }
        match (comp.dtstart, comp.dtend) {
            (Some(s), Some(e)) => {
                r.start.is_none_or(|x| x <= at(e)) && r.end.is_none_or(|x| x > at(s))
            }
            _ => false,
        }
    }

    fn period(&self, v: &ICalendarValue) -> Option<(Instant, Instant)> {
        period_of(self.obj, v, self.zone)
    }

    /// A VALARM is in range when any of its triggers (with repeats) over the
    /// component's instances is (RFC 4791 §9.9).
    fn alarm_in_range(
        &self,
        comp_idx: usize,
        comp: &Comp,
        valarm: &ICalendarComponent,
        r: &TimeRange,
    ) -> bool {
        let Ok(alarm) = parse_alarm(valarm, &|e| {
            e.values
                .first()
                .and_then(|v| v.as_partial_date_time())
                .and_then(|p| DateValue::from_partial(p, None))
        }) else {
            return false;
        };
        let repeats = |first: Instant| {
            (0..=alarm.repeat).map(move |i| {
                first.saturating_add(Duration::from_millis(
                    alarm.repeat_every.millis().saturating_mul(i64::from(i)),
                ))
            })
        };
        match alarm.trigger {
            None => false,
            Some(Trigger::Absolute(v)) => {
                repeats(v.instant(&self.obj.zones, self.zone)).any(|t| r.contains(t))
            }
            Some(Trigger::Relative {
                offset,
                related_end,
            }) => {
                let reach = offset.exact().millis().unsigned_abs().saturating_add(
                    alarm
                        .repeat_every
                        .millis()
                        .unsigned_abs()
                        .saturating_mul(u64::from(alarm.repeat)),
                );
                let lead = Duration::from_millis(i64::try_from(reach).unwrap_or(i64::MAX))
                    .saturating_add_secs(2 * 86_400);
                let zone = comp
                    .anchor()
                    .map_or_else(|| self.zone.clone(), |a| a.zone(&self.obj.zones, self.zone));
                self.comp_instances(comp_idx, r, lead).any(|i| {
                    let base = if related_end { i.end } else { i.start };
                    repeats(relative_trigger(base, offset, &zone)).any(|t| r.contains(t))
                })
            }
        }
    }

    fn prop_matches(&self, c: &ICalendarComponent, f: &PropFilter) -> bool {
        let mut entries = c
            .entries
            .iter()
            .filter(|e| property_name(&e.name).eq_ignore_ascii_case(&f.name));
        if f.is_not_defined {
            return entries.next().is_none();
        }
        entries.any(|e| {
            f.time_range.is_none_or(|r| self.entry_in_range(e, &r))
                && f.text_match
                    .as_ref()
                    .is_none_or(|t| t.matches(&entry_value_text(e)))
                && f.param_filters.iter().all(|p| param_matches(e, p))
        })
    }

    fn entry_in_range(&self, e: &ICalendarEntry, r: &TimeRange) -> bool {
        let tz =
            crate::value::tzid_of(e).and_then(|id| self.obj.zone_ids.iter().position(|z| z == id));
        e.values.iter().any(|v| match v {
            ICalendarValue::PartialDateTime(p) => DateValue::from_partial(p, tz).is_some_and(|d| {
                let start = d.instant(&self.obj.zones, self.zone);
                if d.is_date() {
                    let end = d
                        .zone(&self.obj.zones, self.zone)
                        .to_instant(d.local() + chrono::TimeDelta::days(1));
                    r.overlaps(start, end)
                } else {
                    r.contains(start)
                }
            }),
            ICalendarValue::Period(_) => self.period(v).is_some_and(|(s, end)| r.overlaps(s, end)),
            _ => false,
        })
    }
}

fn param_matches(e: &ICalendarEntry, f: &ParamFilter) -> bool {
    let mut params = e
        .params
        .iter()
        .filter(|p| param_name(&p.name).eq_ignore_ascii_case(&f.name));
    if f.is_not_defined {
        return params.next().is_none();
    }
    params.any(|p| {
        f.text_match
            .as_ref()
            .is_none_or(|t| t.matches(&param_value_text(p)))
    })
}

/// A PERIOD value as instants (UTC or floating in `zone`).
pub(crate) fn period_of(
    obj: &CalendarObject,
    v: &ICalendarValue,
    zone: &Zone,
) -> Option<(Instant, Instant)> {
    let ICalendarValue::Period(p) = v else {
        return None;
    };
    let (start, end) = match p {
        ICalendarPeriod::Range { start, end } => {
            let s = DateValue::from_partial(start, None)?;
            (
                s,
                DateValue::from_partial(end, None)?.instant(&obj.zones, zone),
            )
        }
        ICalendarPeriod::Duration { start, duration } => {
            let s = DateValue::from_partial(start, None)?;
            let d = crate::value::Dur::from_calcard(duration);
            (s, d.add_to(s.local(), &s.zone(&obj.zones, zone)))
        }
    };
    Some((start.instant(&obj.zones, zone), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collations_compare_as_rfc4790_says() {
        let m = |text: &str, collation| TextMatch {
            text: text.into(),
            collation,
            negate: false,
        };
        assert!(m("MEET", Collation::AsciiCasemap).matches("team meeting"));
        assert!(!m("MEET", Collation::Octet).matches("team meeting"));
        assert!(m("ÉTÉ", Collation::UnicodeCasemap).matches("un été chaud"));
        assert!(!m("ÉTÉ", Collation::AsciiCasemap).matches("un été chaud"));
        let negated = TextMatch {
            text: "x".into(),
            collation: Collation::Octet,
            negate: true,
        };
        assert!(negated.matches("abc"));
    }

    #[test]
    fn value_of_line_skips_quoted_colons() {
        assert_eq!(
            value_of_line("ATTENDEE;CN=\"a:b\":mailto:x@y\r\n"),
            "mailto:x@y"
        );
    }
}
