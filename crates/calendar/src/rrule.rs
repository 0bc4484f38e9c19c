//! The recurrence-rule engine: RFC 5545 §3.3.10 RRULE over local wall-clock
//! times, lazily, from any starting point.
//!
//! Owns: `Rule` (a validated RRULE) and `RuleIter`, which yields the rule's
//! candidate local date-times in strictly increasing order, starting at any
//! local time without enumerating what lies before it (skip-ahead), except
//! when COUNT forces counting from DTSTART.
//! Must never: know about time zones, overrides, EXDATE or alarms (the
//! `instances` module layers those on top); loop without a named bound; use
//! calcard's `expand_dates`, which caps instances and pairs overrides wrongly.
//!
//! Semantics: every BY* part works as a filter over the days (and times) of
//! each period of FREQ×INTERVAL, which yields RFC 5545's expand/limit table;
//! BYSETPOS then picks from the period's sorted set. Missing parts default
//! from DTSTART as RFC 5545 requires (YEARLY: month and day; MONTHLY: day;
//! WEEKLY: weekday; time parts below FREQ: DTSTART's). Invalid dates (Feb 30)
//! are skipped, never clamped. DTSTART is always the first instance and counts
//! toward COUNT (RFC 5545 §3.8.5.3).

use calcard::icalendar::{
    ICalendarFrequency, ICalendarRecurrenceRule, ICalendarSkip, ICalendarWeekday,
};
use chrono::{
    Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Weekday,
};

/// The last year the engine produces: iCalendar years have four digits.
pub(crate) const YEAR_MAX: i32 = 9999;
/// Consecutive periods without a candidate after which a rule is taken as
/// exhausted (e.g. `FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31` never matches).
pub(crate) const EMPTY_PERIODS_MAX: u32 = 200_000;
/// Days without a candidate after which a rule is taken as exhausted: the
/// Gregorian calendar repeats every 400 years, so any combination of BY*
/// parts that matches at all matches within one cycle.
pub(crate) const RULE_GAP_DAYS_MAX: i64 = 400 * 366;

/// RFC 5545 FREQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Freq {
    Secondly,
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// UNTIL as written; the caller resolves it against DTSTART's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// `…Z`: an instant, compared in UTC.
    Utc(NaiveDateTime),
    /// A local (floating) date-time.
    Local(NaiveDateTime),
    /// A DATE: the whole day is included.
    Date(NaiveDate),
}

/// A BYDAY entry: an optional ordinal and a weekday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ByDay {
    pub ordinal: Option<i16>,
    pub weekday: Weekday,
}

/// A validated recurrence rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub freq: Freq,
    /// Invariant: at least 1.
    pub interval: u32,
    pub count: Option<u32>,
    pub until: Option<Until>,
    pub by_second: Vec<u8>,
    pub by_minute: Vec<u8>,
    pub by_hour: Vec<u8>,
    pub by_day: Vec<ByDay>,
    pub by_month_day: Vec<i8>,
    pub by_year_day: Vec<i16>,
    pub by_week_no: Vec<i8>,
    pub by_month: Vec<u8>,
    pub by_set_pos: Vec<i32>,
    pub wkst: Weekday,
}

fn weekday_of(day: ICalendarWeekday) -> Weekday {
    match day {
        ICalendarWeekday::Monday => Weekday::Mon,
        ICalendarWeekday::Tuesday => Weekday::Tue,
        ICalendarWeekday::Wednesday => Weekday::Wed,
        ICalendarWeekday::Thursday => Weekday::Thu,
        ICalendarWeekday::Friday => Weekday::Fri,
        ICalendarWeekday::Saturday => Weekday::Sat,
        ICalendarWeekday::Sunday => Weekday::Sun,
    }
}

fn sorted<T: Ord + Copy>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

fn check_range<T: Copy + Into<i64>>(
    values: &[T],
    min: i64,
    max: i64,
    zero_ok: bool,
    part: &str,
) -> Result<(), String> {
    for v in values {
        let v: i64 = (*v).into();
        if v < -max || v > max || v.abs() < min || (!zero_ok && v == 0) {
            return Err(format!("{part} value {v} is out of range"));
        }
    }
    Ok(())
}

impl Rule {
    /// Validates calcard's parsed RRULE. `until` is resolved by the caller
    /// (it needs to know whether the value was UTC, local or a DATE).
    pub(crate) fn from_calcard(
        r: &ICalendarRecurrenceRule,
        until: Option<Until>,
    ) -> Result<Rule, String> {
        if r.rscale.is_some()
            && !matches!(r.rscale, Some(calcard::common::CalendarScale::Gregorian))
        {
            return Err("RSCALE other than GREGORIAN is not supported".into());
        }
        if matches!(
            r.skip,
            Some(ICalendarSkip::Backward | ICalendarSkip::Forward)
        ) {
            return Err("SKIP other than OMIT is not supported".into());
        }
        let freq = match r.freq {
            ICalendarFrequency::Yearly => Freq::Yearly,
            ICalendarFrequency::Monthly => Freq::Monthly,
            ICalendarFrequency::Weekly => Freq::Weekly,
            ICalendarFrequency::Daily => Freq::Daily,
            ICalendarFrequency::Hourly => Freq::Hourly,
            ICalendarFrequency::Minutely => Freq::Minutely,
            ICalendarFrequency::Secondly => Freq::Secondly,
        };
        // BYSECOND=60 (leap second) cannot be represented; RFC 5545 allows
        // implementations to treat it as 59.
        let by_second: Vec<u8> = r.bysecond.iter().map(|s| (*s).min(59)).collect();
        check_range(&r.byminute, 0, 59, true, "BYMINUTE")?;
        check_range(&r.byhour, 0, 23, true, "BYHOUR")?;
        check_range(&r.bymonthday, 1, 31, false, "BYMONTHDAY")?;
        check_range(&r.byyearday, 1, 366, false, "BYYEARDAY")?;
        check_range(&r.byweekno, 1, 53, false, "BYWEEKNO")?;
        check_range(&r.bysetpos, 1, 366, false, "BYSETPOS")?;
        let by_month: Vec<u8> = r.bymonth.iter().map(|m| m.month()).collect();
        check_range(&by_month, 1, 12, false, "BYMONTH")?;
        let mut by_day = Vec::with_capacity(r.byday.len());
        for d in &r.byday {
            if let Some(n) = d.ordwk
                && (n == 0 || n.abs() > 53)
            {
                return Err(format!("BYDAY ordinal {n} is out of range"));
            }
            by_day.push(ByDay {
                ordinal: d.ordwk,
                weekday: weekday_of(d.weekday),
            });
        }
        Ok(Rule {
            freq,
            interval: u32::from(r.interval.unwrap_or(1).max(1)),
            count: r.count,
            until,
            by_second: sorted(by_second),
            by_minute: sorted(r.byminute.clone()),
            by_hour: sorted(r.byhour.clone()),
            by_day,
            by_month_day: sorted(r.bymonthday.clone()),
            by_year_day: sorted(r.byyearday.clone()),
            by_week_no: sorted(r.byweekno.clone()),
            by_month: sorted(by_month),
            by_set_pos: sorted(r.bysetpos.clone()),
            wkst: r.wkst.map(weekday_of).unwrap_or(Weekday::Mon),
        })
    }

    /// True when the rule yields exactly one candidate per period, so that
    /// COUNT can be skipped over arithmetically.
    fn one_per_period(&self) -> bool {
        self.by_second.is_empty()
            && self.by_minute.is_empty()
            && self.by_hour.is_empty()
            && self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_year_day.is_empty()
            && self.by_week_no.is_empty()
            && self.by_month.is_empty()
            && self.by_set_pos.is_empty()
            && !matches!(self.freq, Freq::Monthly | Freq::Yearly)
    }
}

/// The rule with DTSTART's defaults filled in: what the period loop filters with.
#[derive(Clone, Debug)]
struct Spec {
    months: Vec<u8>,
    month_days: Vec<i8>,
    year_days: Vec<i16>,
    week_nos: Vec<i8>,
    weekdays: Vec<Weekday>,
    nth_weekdays: Vec<(i16, Weekday)>,
    /// Ordinals count within the month (MONTHLY, or YEARLY with BYMONTH).
    nth_in_month: bool,
    hours: Vec<u8>,
    minutes: Vec<u8>,
    seconds: Vec<u8>,
    /// Sorted times of day for DAILY and coarser frequencies.
    times: Vec<NaiveTime>,
}

impl Spec {
    fn new(rule: &Rule, dtstart: NaiveDateTime) -> Spec {
        let no_day_parts = rule.by_week_no.is_empty()
            && rule.by_year_day.is_empty()
            && rule.by_month_day.is_empty()
            && rule.by_day.is_empty();
        let mut months = rule.by_month.clone();
        let mut month_days = rule.by_month_day.clone();
        let mut weekdays: Vec<Weekday> = Vec::new();
        let mut nth_weekdays = Vec::new();
        if no_day_parts {
            match rule.freq {
                Freq::Yearly => {
                    if months.is_empty() {
                        months.push(dtstart.month() as u8);
                    }
                    month_days.push(dtstart.day() as i8);
                }
                Freq::Monthly => month_days.push(dtstart.day() as i8),
                Freq::Weekly => weekdays.push(dtstart.weekday()),
                _ => {}
            }
        }
        let ordinals_apply =
            matches!(rule.freq, Freq::Monthly | Freq::Yearly) && rule.by_week_no.is_empty();
        for d in &rule.by_day {
            match d.ordinal {
                Some(n) if ordinals_apply => nth_weekdays.push((n, d.weekday)),
                _ => weekdays.push(d.weekday),
            }
        }
        let default_part = |given: &Vec<u8>, coarser: bool, value: u32| -> Vec<u8> {
            if !given.is_empty() {
                given.clone()
            } else if coarser {
                vec![value as u8]
            } else {
                Vec::new()
            }
        };
        let hours = default_part(&rule.by_hour, rule.freq > Freq::Hourly, dtstart.hour());
        let minutes = default_part(
            &rule.by_minute,
            rule.freq > Freq::Minutely,
            dtstart.minute(),
        );
        let seconds = default_part(
            &rule.by_second,
            rule.freq > Freq::Secondly,
            dtstart.second(),
        );
        let mut times = Vec::new();
        if rule.freq >= Freq::Daily {
            for h in &hours {
                for m in &minutes {
                    for s in &seconds {
                        if let Some(t) =
                            NaiveTime::from_hms_opt(u32::from(*h), u32::from(*m), u32::from(*s))
                        {
                            times.push(t);
                        }
                    }
                }
            }
            times.sort_unstable();
        }
        Spec {
            months,
            month_days,
            year_days: rule.by_year_day.clone(),
            week_nos: rule.by_week_no.clone(),
            weekdays,
            nth_weekdays,
            nth_in_month: rule.freq == Freq::Monthly || !rule.by_month.is_empty(),
            hours,
            minutes,
            seconds,
            times,
        }
    }

    fn day_matches(&self, d: NaiveDate, wkst: Weekday) -> bool {
        if !self.months.is_empty() && !self.months.contains(&(d.month() as u8)) {
            return false;
        }
        if !self.month_days.is_empty() {
            let last = days_in_month(d.year(), d.month()) as i8;
            let day = d.day() as i8;
            if !self
                .month_days
                .iter()
                .any(|m| *m == day || *m == day - last - 1)
            {
                return false;
            }
        }
        if !self.year_days.is_empty() {
            let len = days_in_year(d.year()) as i16;
            let ord = d.ordinal() as i16;
            if !self
                .year_days
                .iter()
                .any(|y| *y == ord || *y == ord - len - 1)
            {
                return false;
            }
        }
        if !self.week_nos.is_empty() && !week_no_matches(&self.week_nos, d, wkst) {
            return false;
        }
        if self.weekdays.is_empty() && self.nth_weekdays.is_empty() {
            return true;
        }
        if self.weekdays.contains(&d.weekday()) {
            return true;
        }
        self.nth_matches(d)
    }

    fn nth_matches(&self, d: NaiveDate) -> bool {
        let (index, len) = if self.nth_in_month {
            (d.day() as i16, days_in_month(d.year(), d.month()) as i16)
        } else {
            (d.ordinal() as i16, days_in_year(d.year()) as i16)
        };
        let from_start = (index - 1) / 7 + 1;
        let from_end = -((len - index) / 7 + 1);
        self.nth_weekdays
            .iter()
            .any(|(n, wd)| *wd == d.weekday() && (*n == from_start || *n == from_end))
    }

    fn time_matches(&self, t: NaiveDateTime) -> bool {
        (self.hours.is_empty() || self.hours.contains(&(t.hour() as u8)))
            && (self.minutes.is_empty() || self.minutes.contains(&(t.minute() as u8)))
            && (self.seconds.is_empty() || self.seconds.contains(&(t.second() as u8)))
    }
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_year(year: i32) -> u32 {
    if is_leap(year) { 366 } else { 365 }
}

/// The first day of week 1 of `year` (the first week with at least four days
/// of the year, weeks starting on `wkst`).
fn week_one_start(year: i32, wkst: Weekday) -> Option<NaiveDate> {
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let offset = days_between_weekdays(wkst, jan1.weekday());
    if 7 - offset >= 4 {
        jan1.checked_sub_days(Days::new(u64::from(offset)))
    } else {
        jan1.checked_add_days(Days::new(u64::from(7 - offset)))
    }
}

/// Days from weekday `a` forward to weekday `b` (0..=6).
fn days_between_weekdays(a: Weekday, b: Weekday) -> u32 {
    (b.num_days_from_monday() + 7 - a.num_days_from_monday()) % 7
}

fn weeks_in_year(year: i32, wkst: Weekday) -> i64 {
    match (week_one_start(year, wkst), week_one_start(year + 1, wkst)) {
        (Some(a), Some(b)) => (b - a).num_days() / 7,
        _ => 52,
    }
}

/// BYWEEKNO matching of a day of the period's year. Days before week 1
/// belong to the previous year's last week (matched by -1 or its number);
/// days after the last week belong to next year's week 1 (matched by 1).
fn week_no_matches(week_nos: &[i8], d: NaiveDate, wkst: Weekday) -> bool {
    let year = d.year();
    let Some(start) = week_one_start(year, wkst) else {
        return false;
    };
    let weeks = weeks_in_year(year, wkst);
    if d < start {
        let last = weeks_in_year(year - 1, wkst);
        return week_nos.iter().any(|w| i64::from(*w) == last || *w == -1);
    }
    let week = (d - start).num_days() / 7 + 1;
    if week > weeks {
        return week_nos.contains(&1);
    }
    week_nos
        .iter()
        .any(|w| i64::from(*w) == week || i64::from(*w) == week - weeks - 1)
}

/// Lazily yields a rule's occurrences (local wall-clock times) in strictly
/// increasing order, from `from` on, DTSTART first.
pub(crate) struct RuleIter<'r> {
    rule: &'r Rule,
    spec: Spec,
    dtstart: NaiveDateTime,
    until: Option<NaiveDateTime>,
    from: NaiveDateTime,
    /// Index of the next period to generate.
    period: i64,
    buffer: Vec<NaiveDateTime>,
    buffer_pos: usize,
    /// Occurrences counted so far toward COUNT (DTSTART included).
    counted: u64,
    dtstart_pending: bool,
    last: Option<NaiveDateTime>,
    done: bool,
}

impl<'r> RuleIter<'r> {
    /// Iterates `rule` anchored at `dtstart`, yielding occurrences `>= from`.
    /// `until` is UNTIL resolved to DTSTART's local time (inclusive).
    pub(crate) fn new(
        rule: &'r Rule,
        dtstart: NaiveDateTime,
        until: Option<NaiveDateTime>,
        from: NaiveDateTime,
    ) -> Self {
        let spec = Spec::new(rule, dtstart);
        let mut it = RuleIter {
            rule,
            spec,
            dtstart,
            until,
            from,
            period: 0,
            buffer: Vec::new(),
            buffer_pos: 0,
            counted: 1,
            dtstart_pending: true,
            last: None,
            done: false,
        };
        if until.is_some_and(|u| dtstart > u) {
            // DTSTART is always an instance, even past UNTIL (RFC 5545).
            it.period = i64::MAX;
        }
        if from > dtstart {
            it.dtstart_pending = false;
            it.skip_to(from);
        }
        it
    }

    /// Jumps to the period holding `from` when nothing before it must be counted.
    fn skip_to(&mut self, from: NaiveDateTime) {
        if self.period == i64::MAX {
            return;
        }
        let k = self.period_index_of(from).saturating_sub(1).max(0);
        if self.rule.count.is_none() {
            self.period = k;
        } else if self.rule.one_per_period() && k > 0 {
            self.period = k;
            self.counted = k as u64;
        }
    }

    fn step_secs(&self) -> i64 {
        let unit = match self.rule.freq {
            Freq::Secondly => 1,
            Freq::Minutely => 60,
            Freq::Hourly => 3600,
            _ => 86_400,
        };
        unit * i64::from(self.rule.interval)
    }

    /// The sub-daily base: DTSTART truncated to the frequency's unit.
    fn sub_daily_base(&self) -> NaiveDateTime {
        let t = self.dtstart;
        let secs = match self.rule.freq {
            Freq::Secondly => 0,
            Freq::Minutely => t.second(),
            _ => t.second() + 60 * t.minute(),
        };
        t - TimeDelta::seconds(i64::from(secs))
    }

    fn week_start(&self, d: NaiveDate) -> NaiveDate {
        let back = days_between_weekdays(self.rule.wkst, d.weekday());
        d.checked_sub_days(Days::new(u64::from(back))).unwrap_or(d)
    }

    /// The index of the period that contains local time `t` (may be negative).
    fn period_index_of(&self, t: NaiveDateTime) -> i64 {
        let interval = i64::from(self.rule.interval);
        let s = self.dtstart;
        let units = match self.rule.freq {
            Freq::Yearly => i64::from(t.year() - s.year()),
            Freq::Monthly => {
                i64::from(t.year() - s.year()) * 12 + i64::from(t.month()) - i64::from(s.month())
            }
            Freq::Weekly => (self.week_start(t.date()) - self.week_start(s.date())).num_days() / 7,
            Freq::Daily => (t.date() - s.date()).num_days(),
            _ => {
                let secs = (t - self.sub_daily_base()).num_seconds();
                return secs.div_euclid(self.step_secs());
            }
        };
        units.div_euclid(interval)
    }

    /// The days of period `k` (DAILY and coarser), or `None` past `YEAR_MAX`.
    fn period_days(&self, k: i64) -> Option<(NaiveDate, u32)> {
        let n = k.checked_mul(i64::from(self.rule.interval))?;
        let s = self.dtstart.date();
        let (first, len) = match self.rule.freq {
            Freq::Yearly => {
                let year = i64::from(s.year()).checked_add(n)?;
                let year = i32::try_from(year).ok()?;
                (NaiveDate::from_ymd_opt(year, 1, 1)?, days_in_year(year))
            }
            Freq::Monthly => {
                let first = s.with_day(1)?;
                let first = first.checked_add_months(Months::new(u32::try_from(n).ok()?))?;
                (first, days_in_month(first.year(), first.month()))
            }
            Freq::Weekly => {
                let days = u64::try_from(n.checked_mul(7)?).ok()?;
                (self.week_start(s).checked_add_days(Days::new(days))?, 7)
            }
            _ => (s.checked_add_days(Days::new(u64::try_from(n).ok()?))?, 1),
        };
        (first.year() <= YEAR_MAX).then_some((first, len))
    }

    /// Fills the buffer with period `k`'s candidates; returns the period to
    /// look at next (sub-daily periods can jump over days that cannot match).
    fn fill(&mut self, k: i64) -> Option<i64> {
        self.buffer.clear();
        self.buffer_pos = 0;
        if self.rule.freq >= Freq::Daily {
            let (first, len) = self.period_days(k)?;
            for i in 0..len {
                let Some(d) = first.checked_add_days(Days::new(u64::from(i))) else {
                    break;
                };
                if self.spec.day_matches(d, self.rule.wkst) {
                    self.buffer
                        .extend(self.spec.times.iter().map(|t| d.and_time(*t)));
                }
            }
            self.apply_set_pos();
            return Some(k + 1);
        }
        self.fill_sub_daily(k)
    }

    fn fill_sub_daily(&mut self, k: i64) -> Option<i64> {
        let step = self.step_secs();
        let offset = k.checked_mul(step)?;
        let start = self
            .sub_daily_base()
            .checked_add_signed(TimeDelta::try_seconds(offset)?)?;
        if start.year() > YEAR_MAX {
            return None;
        }
        let base = self.sub_daily_base();
        let next_k = |boundary: NaiveDateTime| -> i64 {
            let secs = (boundary - base).num_seconds();
            (secs + step - 1).div_euclid(step).max(k + 1)
        };
        if !self.spec.day_matches(start.date(), self.rule.wkst) {
            let midnight = start.date().succ_opt()?.and_time(NaiveTime::MIN);
            return Some(next_k(midnight));
        }
        if !self.spec.hours.is_empty() && !self.spec.hours.contains(&(start.hour() as u8)) {
            let hour = start.with_minute(0)?.with_second(0)? + TimeDelta::hours(1);
            return Some(next_k(hour));
        }
        if self.rule.freq == Freq::Secondly
            && !self.spec.minutes.is_empty()
            && !self.spec.minutes.contains(&(start.minute() as u8))
        {
            let minute = start.with_second(0)? + TimeDelta::minutes(1);
            return Some(next_k(minute));
        }
        match self.rule.freq {
            Freq::Hourly => {
                for m in self.minutes_or(start.minute()) {
                    for s in self.seconds_or(start.second()) {
                        if let Some(t) = start
                            .with_minute(u32::from(m))
                            .and_then(|t| t.with_second(u32::from(s)))
                        {
                            self.buffer.push(t);
                        }
                    }
                }
            }
            Freq::Minutely => {
                for s in self.seconds_or(start.second()) {
                    if let Some(t) = start.with_second(u32::from(s)) {
                        self.buffer.push(t);
                    }
                }
            }
            _ => {
                if self.spec.time_matches(start) {
                    self.buffer.push(start);
                }
            }
        }
        self.apply_set_pos();
        Some(k + 1)
    }

    fn minutes_or(&self, default: u32) -> Vec<u8> {
        if self.spec.minutes.is_empty() {
            vec![default as u8]
        } else {
            self.spec.minutes.clone()
        }
    }

    fn seconds_or(&self, default: u32) -> Vec<u8> {
        if self.spec.seconds.is_empty() {
            vec![default as u8]
        } else {
            self.spec.seconds.clone()
        }
    }

    fn apply_set_pos(&mut self) {
        self.buffer.sort_unstable();
        self.buffer.dedup();
        if self.rule.by_set_pos.is_empty() || self.buffer.is_empty() {
            return;
        }
        let len = self.buffer.len() as i64;
        let mut picked: Vec<NaiveDateTime> = self
            .rule
            .by_set_pos
            .iter()
            .filter_map(|p| {
                let i = if *p > 0 {
                    i64::from(*p) - 1
                } else {
                    len + i64::from(*p)
                };
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.buffer.get(i).copied())
            })
            .collect();
        picked.sort_unstable();
        picked.dedup();
        self.buffer = picked;
    }

    fn exhausted_by_count(&self) -> bool {
        self.rule
            .count
            .is_some_and(|c| self.counted >= u64::from(c))
    }

    /// The next candidate from the rule (DTSTART excluded), in order.
    fn next_candidate(&mut self) -> Option<NaiveDateTime> {
        let mut empty_periods: u32 = 0;
        let gap_from = self.last.unwrap_or(self.from.max(self.dtstart));
        // Bounded by EMPTY_PERIODS_MAX, RULE_GAP_DAYS_MAX and YEAR_MAX.
        loop {
            if let Some(t) = self.buffer.get(self.buffer_pos).copied() {
                self.buffer_pos += 1;
                return Some(t);
            }
            if self.period == i64::MAX || empty_periods >= EMPTY_PERIODS_MAX {
                return None;
            }
            let next = self.fill(self.period)?;
            self.period = next;
            if self.buffer.is_empty() {
                empty_periods += 1;
                if self.period_start_after_gap(gap_from) {
                    return None;
                }
            } else {
                empty_periods = 0;
            }
        }
    }

    fn period_start_after_gap(&self, gap_from: NaiveDateTime) -> bool {
        let start = match self.rule.freq {
            f if f >= Freq::Daily => self
                .period_days(self.period)
                .map(|(d, _)| d.and_time(NaiveTime::MIN)),
            _ => TimeDelta::try_seconds(self.period.saturating_mul(self.step_secs()))
                .and_then(|d| self.sub_daily_base().checked_add_signed(d)),
        };
        match start {
            Some(s) => (s - gap_from).num_days() > RULE_GAP_DAYS_MAX,
            None => true,
        }
    }
}

impl Iterator for RuleIter<'_> {
    type Item = NaiveDateTime;

    fn next(&mut self) -> Option<NaiveDateTime> {
        if self.done {
            return None;
        }
        if self.dtstart_pending {
            self.dtstart_pending = false;
            self.last = Some(self.dtstart);
            return Some(self.dtstart);
        }
        // Bounded: every pass consumes a candidate (next_candidate is bounded)
        // and COUNT, UNTIL or YEAR_MAX end the rule.
        loop {
            if self.exhausted_by_count() {
                self.done = true;
                return None;
            }
            let Some(t) = self.next_candidate() else {
                self.done = true;
                return None;
            };
            if t <= self.dtstart {
                continue;
            }
            if self.until.is_some_and(|u| t > u) {
                self.done = true;
                return None;
            }
            self.counted += 1;
            if t < self.from {
                continue;
            }
            self.last = Some(t);
            return Some(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        let parsed = calcard::Parser::new(&format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRRULE:{text}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ))
        .entry();
        let calcard::Entry::ICalendar(cal) = parsed else {
            panic!("not parsed")
        };
        let entry = cal.components[1]
            .entries
            .iter()
            .find(|e| matches!(e.name, calcard::icalendar::ICalendarProperty::Rrule))
            .expect("rrule");
        let Some(calcard::icalendar::ICalendarValue::RecurrenceRule(r)) = entry.values.first()
        else {
            panic!("bad rrule {text}")
        };
        let until = r
            .until
            .as_ref()
            .and_then(|u| u.to_date_time())
            .map(|u| Until::Local(u.date_time));
        Rule::from_calcard(r, until).expect("valid")
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").expect("dt")
    }

    fn take(text: &str, start: &str, n: usize) -> Vec<String> {
        let r = rule(text);
        let until = match r.until {
            Some(Until::Local(u)) => Some(u),
            _ => None,
        };
        RuleIter::new(&r, dt(start), until, dt(start))
            .take(n)
            .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
            .collect()
    }

    /// One data-driven check: the rule's first instances as text.
    fn check(text: &str, start: &str, n: usize, expected: &[&str]) {
        assert_eq!(take(text, start, n), expected, "rule {text} from {start}");
    }

    #[test]
    fn rfc5545_examples() {
        // Daily for 10 occurrences.
        check(
            "FREQ=DAILY;COUNT=3",
            "19970902T090000",
            5,
            &["19970902T090000", "19970903T090000", "19970904T090000"],
        );
        // Every other week on Tuesday and Thursday.
        check(
            "FREQ=WEEKLY;INTERVAL=2;WKST=SU;BYDAY=TU,TH",
            "19970902T090000",
            4,
            &[
                "19970902T090000",
                "19970904T090000",
                "19970916T090000",
                "19970918T090000",
            ],
        );
        // Monthly on the first Friday.
        check(
            "FREQ=MONTHLY;BYDAY=1FR",
            "19970905T090000",
            3,
            &["19970905T090000", "19971003T090000", "19971107T090000"],
        );
        // Monthly on the second-to-last Monday.
        check(
            "FREQ=MONTHLY;BYDAY=-2MO",
            "19970922T090000",
            3,
            &["19970922T090000", "19971020T090000", "19971117T090000"],
        );
        // Monthly on the last day.
        check(
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            "19970930T090000",
            3,
            &["19970930T090000", "19971031T090000", "19971130T090000"],
        );
        // Yearly on the 20th Monday.
        check(
            "FREQ=YEARLY;BYDAY=20MO",
            "19970519T090000",
            3,
            &["19970519T090000", "19980518T090000", "19990517T090000"],
        );
        // Monday of week 20.
        check(
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
            "19970512T090000",
            3,
            &["19970512T090000", "19980511T090000", "19990517T090000"],
        );
        // Every Friday the 13th.
        check(
            "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
            "19980213T090000",
            3,
            &["19980213T090000", "19980313T090000", "19981113T090000"],
        );
        // US presidential election day.
        check(
            "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
            "19961105T090000",
            3,
            &["19961105T090000", "20001107T090000", "20041102T090000"],
        );
        // Third instance of Tue/Wed/Thu each month.
        check(
            "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
            "19970904T090000",
            5,
            &["19970904T090000", "19971007T090000", "19971106T090000"],
        );
        // Every 3 hours from 9:00 until 17:00.
        check(
            "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000",
            "19970902T090000",
            9,
            &["19970902T090000", "19970902T120000", "19970902T150000"],
        );
        // Every 20 minutes from 9:00 to 16:40 (first three).
        check(
            "FREQ=DAILY;BYHOUR=9,10;BYMINUTE=0,20,40",
            "19970902T090000",
            3,
            &["19970902T090000", "19970902T092000", "19970902T094000"],
        );
        // Yearly on day 1, 100 and 200 every third year.
        check(
            "FREQ=YEARLY;INTERVAL=3;COUNT=4;BYYEARDAY=1,100,200",
            "19970101T090000",
            5,
            &[
                "19970101T090000",
                "19970410T090000",
                "19970719T090000",
                "20000101T090000",
            ],
        );
        // WKST matters: MO vs SU.
        check(
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
            "19970805T090000",
            4,
            &[
                "19970805T090000",
                "19970810T090000",
                "19970819T090000",
                "19970824T090000",
            ],
        );
        check(
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
            "19970805T090000",
            4,
            &[
                "19970805T090000",
                "19970817T090000",
                "19970819T090000",
                "19970831T090000",
            ],
        );
    }

    #[test]
    fn invalid_dates_are_skipped_not_clamped() {
        check(
            "FREQ=MONTHLY;BYMONTHDAY=31",
            "20260131T100000",
            3,
            &["20260131T100000", "20260331T100000", "20260531T100000"],
        );
        check(
            "FREQ=YEARLY",
            "20240229T100000",
            2,
            &["20240229T100000", "20280229T100000"],
        );
    }

    #[test]
    fn impossible_rule_terminates() {
        // BYMONTHDAY=31;BYMONTH=2 never matches: only DTSTART remains.
        check(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31",
            "20260101T100000",
            3,
            &["20260101T100000"],
        );
        check(
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
            "20260101T100000",
            3,
            &["20260101T100000"],
        );
        check(
            "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
            "20260101T100000",
            3,
            &["20260101T100000"],
        );
    }

    #[test]
    fn skip_ahead_equals_full_iteration() {
        let r = rule("FREQ=DAILY;INTERVAL=3;BYHOUR=9,18");
        let start = dt("19700101T090000");
        let from = dt("20261204T000000");
        let direct: Vec<_> = RuleIter::new(&r, start, None, from).take(5).collect();
        let full: Vec<_> = RuleIter::new(&r, start, None, start)
            .skip_while(|t| *t < from)
            .take(5)
            .collect();
        assert_eq!(direct, full);
    }

    #[test]
    fn count_skip_ahead_for_simple_rules_counts_right() {
        let r = rule("FREQ=DAILY;COUNT=10");
        let start = dt("20260101T090000");
        let from = dt("20260105T000000");
        let direct: Vec<_> = RuleIter::new(&r, start, None, from).collect();
        let full: Vec<_> = RuleIter::new(&r, start, None, start)
            .filter(|t| *t >= from)
            .collect();
        assert_eq!(direct, full);
        assert_eq!(direct.len(), 6);
    }
}
