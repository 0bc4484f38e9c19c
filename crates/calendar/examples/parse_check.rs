//! Development aid: parses each given file and times the alarm and
//! expansion calls the fuzz target makes (reads the clock; the crate does not).
use tocsin_calendar::*;

fn main() {
    for path in std::env::args().skip(1) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).to_string();
        let obj = match CalendarObject::parse(&text, &Limits::default()) {
            Ok(o) => o,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        let zone = Zone::utc();
        let now = Instant::from_secs(1_796_000_000);
        let addresses = vec!["mailto:a@example.com".to_string()];
        let view = UserView {
            user: "u",
            addresses: &addresses,
            zone: &zone,
            alarm_overlay: None,
            default_alarms: None,
        };
        let policy = AlarmPolicy::default();
        let t = std::time::Instant::now();
        let n = obj.instances_from(&zone, Instant::MIN).take(200).count();
        println!(
            "{path}: ok {} instances(200)={n} {:?}",
            obj.uid(),
            t.elapsed()
        );
        let t = std::time::Instant::now();
        let due = due_alarms(&obj, &view, Instant::from_secs(1_795_000_000), now, &policy);
        println!("  due {} {:?}", due.len(), t.elapsed());
        let t = std::time::Instant::now();
        let up = upcoming_alarms(&obj, &view, now, 5, &policy);
        println!(
            "  upcoming {} {:?} {:?}",
            up.len(),
            up.first().map(|d| d.trigger),
            t.elapsed()
        );
        let t = std::time::Instant::now();
        let nc = next_check(
            &obj,
            &[(view, Instant::from_secs(1_700_000_000))],
            now,
            &policy,
        );
        println!("  next_check {nc:?} {:?}", t.elapsed());
    }
}
