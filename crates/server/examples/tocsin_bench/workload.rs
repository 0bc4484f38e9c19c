//! The generated calendars the benchmarks write: a realistic mix of
//! VEVENTs for the CalDAV workload, and one-alarm events for the alarm
//! benchmarks. Deterministic from a seed, so every server gets the same
//! objects in the same order.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tocsin_calendar::Instant;

/// One object resource: its file name in the collection and its text.
pub struct Object {
    pub name: String,
    pub text: String,
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch (the webhook's form).
pub fn rfc3339(seconds: i64) -> String {
    Instant::from_millis(seconds * 1000).to_rfc3339()
}

/// `YYYYMMDDTHHMMSSZ` of seconds since the epoch.
pub fn ical_utc(seconds: i64) -> String {
    rfc3339(seconds).replace(['-', ':'], "")
}

/// `YYYYMMDDTHHMMSS` (a local time, no zone suffix) of seconds since the epoch.
pub fn ical_local(seconds: i64) -> String {
    ical_utc(seconds).trim_end_matches('Z').to_owned()
}

/// `YYYYMMDD` of a day number (days since 1970-01-01).
pub fn ical_date(days: i64) -> String {
    ical_utc(days * 86_400)[..8].to_owned()
}

/// Seconds since the epoch of the first day of the month `ahead` months
/// after the month holding `seconds`, 00:00 UTC.
pub fn month_start(seconds: i64, ahead: i64) -> i64 {
    let text = rfc3339(seconds);
    let year: i64 = text[..4].parse().unwrap_or(1970);
    let month: i64 = text[5..7].parse().unwrap_or(1);
    let index = year * 12 + (month - 1) + ahead;
    let first = format!("{:04}-{:02}-01T00:00:00Z", index / 12, index % 12 + 1);
    Instant::parse_rfc3339(&first).map_or(0, |i| i.millis() / 1000)
}

/// The zones the mix uses: UTC (no VTIMEZONE) and four IANA zones with
/// their VTIMEZONE, as clients send them.
const ZONES: [(&str, &str); 4] = [
    (
        "Europe/Berlin",
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n\
DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
    ),
    (
        "America/New_York",
        "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n\
DTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\n\
TZOFFSETTO:-0500\r\nTZNAME:EST\r\nDTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
    ),
    (
        "Asia/Tokyo",
        "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nTZNAME:JST\r\n\
DTSTART:19700101T000000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
    ),
    (
        "Australia/Sydney",
        "BEGIN:VTIMEZONE\r\nTZID:Australia/Sydney\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+1100\r\nTZOFFSETTO:+1000\r\nTZNAME:AEST\r\n\
DTSTART:19700405T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+1000\r\n\
TZOFFSETTO:+1100\r\nTZNAME:AEDT\r\nDTSTART:19701004T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n",
    ),
];

const SUMMARIES: [&str; 12] = [
    "Team sync",
    "Dentist",
    "Lunch with Sam",
    "1:1",
    "Project review",
    "Gym",
    "Flight to Lisbon",
    "Planning",
    "Call the bank",
    "Piano lesson",
    "Standup",
    "Board meeting",
];

const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// What kinds the mix holds, by share (in percent).
///
/// | kind | share |
/// |---|---:|
/// | single timed event (UTC or one of four zones) | 45 |
/// | single all-day event (1–3 days) | 10 |
/// | yearly all-day (birthday), endless | 5 |
/// | weekly timed, COUNT 10–52 / UNTIL / endless; 40 % with 1–3 overrides and an EXDATE | 25 |
/// | daily timed, COUNT 5–30 | 10 |
/// | monthly timed, endless | 5 |
///
/// About 35 % carry one or two VALARMs (relative to the start).
pub fn dav_mix(count: usize, seed: u64, today: i64) -> Vec<Object> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let uid = format!("bench-{seed}-{i:06}");
            let text = mix_one(&mut rng, &uid, today);
            Object {
                name: format!("{uid}.ics"),
                text,
            }
        })
        .collect()
}

struct Vevent {
    lines: Vec<String>,
}

impl Vevent {
    fn new(uid: &str, dtstamp: &str) -> Vevent {
        Vevent {
            lines: vec![format!("UID:{uid}"), format!("DTSTAMP:{dtstamp}")],
        }
    }
    fn add(&mut self, line: String) {
        self.lines.push(line);
    }
    fn render(&self, alarms: &[String], out: &mut String) {
        out.push_str("BEGIN:VEVENT\r\n");
        for line in &self.lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        for alarm in alarms {
            out.push_str(alarm);
        }
        out.push_str("END:VEVENT\r\n");
    }
}

fn alarm(trigger: &str, summary: &str) -> String {
    format!(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:{trigger}\r\nDESCRIPTION:{summary}\r\nEND:VALARM\r\n"
    )
}

fn mix_one(rng: &mut StdRng, uid: &str, today: i64) -> String {
    let summary = SUMMARIES[rng.gen_range(0..SUMMARIES.len())];
    let dtstamp = ical_utc(today * 86_400);
    // Starts spread over a year back and a year ahead.
    let day = today + rng.gen_range(-365..365);
    let minute_of_day = rng.gen_range(7 * 4..21 * 4) * 15;
    let start_local = day * 86_400 + minute_of_day * 60;
    let length_min = [30, 45, 60, 90, 120][rng.gen_range(0..5)];
    let zone = match rng.gen_range(0..6) {
        0 | 1 => None,
        n => Some(ZONES[n - 2]),
    };
    let timed = |prop: &str, seconds: i64| match zone {
        None => format!("{prop}:{}", ical_utc(seconds)),
        Some((tzid, _)) => format!("{prop};TZID={tzid}:{}", ical_local(seconds)),
    };
    let alarms: Vec<String> = match rng.gen_range(0..100) {
        0..=24 => vec![alarm("-PT15M", summary)],
        25..=34 => vec![alarm("-PT1H", summary), alarm("-PT5M", summary)],
        _ => vec![],
    };
    let mut text =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tocsin//bench//EN\r\n");
    let kind = rng.gen_range(0..100);
    let all_day = (45..60).contains(&kind);
    if let (Some((_, vtimezone)), false) = (zone, all_day) {
        text.push_str(vtimezone);
    }
    let mut master = Vevent::new(uid, &dtstamp);
    master.add(format!("SUMMARY:{summary}"));
    let mut overrides: Vec<Vevent> = Vec::new();
    match kind {
        0..=44 => {
            master.add(timed("DTSTART", start_local));
            master.add(timed("DTEND", start_local + length_min * 60));
            if rng.gen_bool(0.3) {
                master.add("LOCATION:Room 4.12".into());
            }
        }
        45..=54 => {
            master.add(format!("DTSTART;VALUE=DATE:{}", ical_date(day)));
            master.add(format!(
                "DTEND;VALUE=DATE:{}",
                ical_date(day + rng.gen_range(1..4))
            ));
            master.add("TRANSP:TRANSPARENT".into());
        }
        55..=59 => {
            master.add(format!("DTSTART;VALUE=DATE:{}", ical_date(day)));
            master.add(format!("DTEND;VALUE=DATE:{}", ical_date(day + 1)));
            master.add("RRULE:FREQ=YEARLY".into());
            master.add("TRANSP:TRANSPARENT".into());
        }
        60..=84 => {
            let weekday = WEEKDAYS[(day + 3).rem_euclid(7) as usize];
            let rule = match rng.gen_range(0..3) {
                0 => format!(
                    "RRULE:FREQ=WEEKLY;BYDAY={weekday};COUNT={}",
                    rng.gen_range(10..53)
                ),
                1 => format!(
                    "RRULE:FREQ=WEEKLY;BYDAY={weekday};UNTIL={}",
                    ical_utc((day + rng.gen_range(60..400)) * 86_400)
                ),
                _ => format!("RRULE:FREQ=WEEKLY;BYDAY={weekday}"),
            };
            master.add(timed("DTSTART", start_local));
            master.add(timed("DTEND", start_local + length_min * 60));
            master.add(rule);
            if rng.gen_bool(0.4) {
                master.add(timed("EXDATE", start_local + 7 * 86_400 * 5));
                for k in 0..rng.gen_range(1..4) {
                    let original = start_local + 7 * 86_400 * (k + 1);
                    let moved = original + 3600 * rng.gen_range(1..4);
                    let mut o = Vevent::new(uid, &dtstamp);
                    o.add(timed("RECURRENCE-ID", original));
                    o.add(format!("SUMMARY:{summary} (moved)"));
                    o.add(timed("DTSTART", moved));
                    o.add(timed("DTEND", moved + length_min * 60));
                    o.add("SEQUENCE:1".into());
                    overrides.push(o);
                }
            }
        }
        85..=94 => {
            master.add(timed("DTSTART", start_local));
            master.add(format!("DURATION:PT{length_min}M"));
            master.add(format!("RRULE:FREQ=DAILY;COUNT={}", rng.gen_range(5..31)));
        }
        _ => {
            master.add(timed("DTSTART", start_local));
            master.add(timed("DTEND", start_local + length_min * 60));
            master.add("RRULE:FREQ=MONTHLY".into());
        }
    }
    master.render(&alarms, &mut text);
    for o in &overrides {
        o.render(&alarms, &mut text);
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

/// An event whose only alarm is due at `trigger_s` (seconds since the
/// epoch, UTC). Every fourth one uses an absolute trigger, the others
/// one relative to the start, so both paths of the calendar core fire.
pub fn alarm_event(uid: &str, trigger_s: i64, now_s: i64, n: usize) -> String {
    let start = trigger_s + 600;
    let trigger = if n % 4 == 3 {
        format!("TRIGGER;VALUE=DATE-TIME:{}", ical_utc(trigger_s))
    } else {
        "TRIGGER:-PT10M".to_owned()
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tocsin//bench//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
DTSTAMP:{stamp}\r\nDTSTART:{dtstart}\r\nDTEND:{dtend}\r\nSUMMARY:Alarm bench {n}\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\n{trigger}\r\nDESCRIPTION:Alarm bench {n}\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        stamp = ical_utc(now_s),
        dtstart = ical_utc(start),
        dtend = ical_utc(start + 1800),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_have_the_ical_forms() {
        assert_eq!(ical_utc(0), "19700101T000000Z");
        assert_eq!(ical_local(86_400 + 3661), "19700102T010101");
        assert_eq!(ical_date(20_000), "20241004");
        assert_eq!(rfc3339(86_400), "1970-01-02T00:00:00Z");
        let dec = 1_796_000_000; // 2026-11-29
        assert_eq!(rfc3339(month_start(dec, 1)), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(month_start(dec, 2)), "2027-01-01T00:00:00Z");
    }
}
