//! Every file of the shared recurring-ical-events corpus parses without
//! panic, and is accepted or rejected as `tests/corpus_expectations.txt`
//! records (one line per file: `name accept` or `name reject <precondition>`).
//! Accepted objects are also expanded over a year and asked for alarms, so
//! the whole pipeline runs on real-world data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tocsin_calendar::*;

/// The corpus is kept in the repository (data, with its licence note in
/// `tests/corpus/README.md`), so the test never depends on what sits
/// beside the checkout.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/recurring-ical-events")
}

fn outcome(text: &str) -> String {
    match CalendarObject::parse(text, &Limits::default()) {
        Ok(obj) => {
            let zone = Zone::iana("Europe/Berlin").expect("zone");
            let range = TimeRange {
                start: Instant::parse_rfc3339("2019-01-01T00:00:00Z"),
                end: Instant::parse_rfc3339("2020-01-01T00:00:00Z"),
            };
            let _ = obj.expand(&range, &zone);
            let _ = obj.time_bounds();
            let addresses = vec!["mailto:a@example.com".to_string()];
            let view = UserView {
                user: "u",
                addresses: &addresses,
                zone: &zone,
                alarm_overlay: None,
                default_alarms: None,
            };
            let now = Instant::parse_rfc3339("2019-06-01T00:00:00Z").expect("now");
            let _ = next_check(&obj, &[(view, now)], now, &AlarmPolicy::default());
            "accept".to_string()
        }
        Err(e) => format!("reject {:?}", e.precondition()),
    }
}

#[test]
fn every_corpus_file_parses_as_recorded() {
    let dir = corpus_dir();
    let expectations_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus_expectations.txt"),
    )
    .expect("expectations file");
    let expected: BTreeMap<&str, &str> = expectations_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(' '))
        .collect();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus at {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 90, "corpus too small: {}", entries.len());
    let mut report = String::new();
    let mut mismatches = Vec::new();
    for path in &entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(path).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        let got = outcome(&text);
        report.push_str(&format!("{name} {got}\n"));
        if expected.get(name.as_str()) != Some(&got.as_str()) {
            mismatches.push(format!(
                "{name}: expected {:?}, got {got}",
                expected.get(name.as_str())
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}\n\nfull report:\n{report}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
