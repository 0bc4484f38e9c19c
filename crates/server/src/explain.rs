//! `tocsin alarms explain FILE.ics`: when will this object's alarms ring?
//!
//! What an operator runs when a user asks "why did my reminder (not)
//! ring?". It computes with exactly the code the scheduler uses and needs
//! no server.

use std::path::Path;

use anyhow::Context;
use tocsin_calendar::{AlarmPolicy, Instant, Zone};

/// Prints the next `count` alarms of the object in `file`, and its `next_check`.
pub fn run(
    file: &Path,
    now: Option<&str>,
    zone: Option<&str>,
    count: usize,
    json: bool,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let now = match now {
        Some(text) => Instant::parse_rfc3339(text)
            .with_context(|| format!("--now {text:?} is not an RFC 3339 time"))?,
        None => tocsin_cluster::Clock::now(&tocsin_cluster::SystemClock),
    };
    let zone = match zone {
        Some(name) => {
            Zone::iana(name).with_context(|| format!("--zone {name:?} is not a known time zone"))?
        }
        None => Zone::utc(),
    };
    let explanation = tocsin_alarms::inspect::explain(
        &text,
        now,
        zone.clone(),
        count,
        &AlarmPolicy::default(),
    )
    .with_context(|| format!("{} is not a calendar object Tocsin accepts", file.display()))?;
    if json {
        let value = serde_json::json!({
            "next_check": explanation.next_check,
            "alarms": explanation.alarms.iter().map(|a| serde_json::json!({
                "uid": a.uid,
                "recurrence_id": a.recurrence_id,
                "alarm_id": a.alarm_id,
                "action": a.action,
                "trigger": a.trigger,
            })).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(());
    }
    println!("now {} (zone {})", now.to_rfc3339(), zone.name());
    match &explanation.next_check {
        Some(at) if explanation.next_check_is_recheck => {
            println!("next_check {at} (a re-check: nothing is due before it)")
        }
        Some(at) => println!("next_check {at}"),
        None => println!("next_check none: no alarm of this object can ring again"),
    }
    if explanation.alarms.is_empty() {
        println!("no alarm will ring after now");
    }
    for alarm in &explanation.alarms {
        println!(
            "{}  ({} {})  {}  uid={} recurrence-id={} alarm={}",
            alarm.trigger,
            alarm.trigger_local,
            zone.name(),
            alarm.action,
            alarm.uid,
            alarm.recurrence_id.as_deref().unwrap_or("-"),
            alarm.alarm_id
        );
    }
    Ok(())
}
