//! Per-user data: the parts of a calendar object that belong to one
//! person — their alarms (VALARM, with RFC 9074 acknowledgements and
//! snoozes) and their transparency (TRANSP) — split from the parts
//! everybody shares, and merged back for that person's view.
//!
//! Owns [`split_per_user`] and [`merge_per_user`]. Both work on content
//! lines and keep every other line exactly as it came (folding, order,
//! unknown properties), so a shared object is not rewritten by reading it.
//! The per-user text is a VCALENDAR holding, for every component of the
//! object (master and overrides, by RECURRENCE-ID), a stub with its UID,
//! RECURRENCE-ID, TRANSP and VALARMs, plus the object's VTIMEZONEs — the
//! shape [`crate::AlarmOverlay::parse`] reads. A stub exists for every
//! component, even one without alarms, so an override that has none does
//! not inherit the master's.
//!
//! Pure text processing: no I/O, no clock.

/// One content line as it came (folded, with its line ending) and its
/// unfolded name.
#[derive(Debug, Clone)]
struct Line {
    raw: String,
    unfolded: String,
}

impl Line {
    /// The property name, upper-cased (`DTSTART` of `DTSTART;TZID=…:…`).
    fn name(&self) -> String {
        self.unfolded
            .split([';', ':'])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase()
    }

    /// The value after the first unquoted colon.
    fn value(&self) -> &str {
        let mut quoted = false;
        for (i, c) in self.unfolded.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ':' if !quoted => return &self.unfolded[i + 1..],
                _ => {}
            }
        }
        ""
    }
}

#[derive(Debug, Clone)]
enum Item {
    Line(Line),
    Component(Component),
}

#[derive(Debug, Clone)]
struct Component {
    name: String,
    begin: Line,
    items: Vec<Item>,
    end: Option<Line>,
}

/// Most nesting accepted (VCALENDAR > VEVENT > VALARM is 3).
const NESTING_MAX: usize = 16;

fn lines_of(text: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let raw = &rest[..end];
        rest = &rest[end..];
        let content = raw.trim_end_matches(['\r', '\n']);
        let continues = content.starts_with([' ', '\t']);
        match lines.last_mut() {
            Some(last) if continues => {
                last.raw.push_str(raw);
                last.unfolded.push_str(&content[1..]);
            }
            _ if content.is_empty() => {}
            _ => lines.push(Line {
                raw: raw.to_owned(),
                unfolded: content.to_owned(),
            }),
        }
    }
    lines
}

/// Parses lines into the components they nest; `None` when unbalanced.
fn parse(text: &str) -> Option<Component> {
    let mut stack: Vec<Component> = Vec::new();
    let mut root: Option<Component> = None;
    for line in lines_of(text) {
        match line.name().as_str() {
            "BEGIN" => {
                if stack.len() >= NESTING_MAX {
                    return None;
                }
                stack.push(Component {
                    name: line.value().trim().to_ascii_uppercase(),
                    begin: line,
                    items: Vec::new(),
                    end: None,
                });
            }
            "END" => {
                let mut done = stack.pop()?;
                if !done.name.eq_ignore_ascii_case(line.value().trim()) {
                    return None;
                }
                done.end = Some(line);
                match stack.last_mut() {
                    Some(parent) => parent.items.push(Item::Component(done)),
                    None if root.is_none() => root = Some(done),
                    None => return None,
                }
            }
            _ => stack.last_mut()?.items.push(Item::Line(line)),
        }
    }
    if stack.is_empty() { root } else { None }
}

fn write(component: &Component, out: &mut String) {
    push_line(out, &component.begin);
    for item in &component.items {
        match item {
            Item::Line(line) => push_line(out, line),
            Item::Component(child) => write(child, out),
        }
    }
    if let Some(end) = &component.end {
        push_line(out, end);
    }
}

fn push_line(out: &mut String, line: &Line) {
    out.push_str(&line.raw);
    if !line.raw.ends_with('\n') {
        out.push_str("\r\n");
    }
}

fn is_object_component(name: &str) -> bool {
    matches!(name, "VEVENT" | "VTODO" | "VJOURNAL")
}

fn is_per_user(item: &Item) -> bool {
    match item {
        Item::Line(line) => line.name() == "TRANSP",
        Item::Component(c) => c.name == "VALARM",
    }
}

fn line_named<'a>(component: &'a Component, name: &str) -> Option<&'a Line> {
    component.items.iter().find_map(|item| match item {
        Item::Line(line) if line.name() == name => Some(line),
        _ => None,
    })
}

/// Identifies a component of an object: its RECURRENCE-ID's TZID and
/// value (empty for the master).
fn instance_key(component: &Component) -> String {
    match line_named(component, "RECURRENCE-ID") {
        None => String::new(),
        Some(line) => {
            let tzid = line
                .unfolded
                .split(':')
                .next()
                .unwrap_or("")
                .split(';')
                .find_map(|p| p.strip_prefix("TZID=").or_else(|| p.strip_prefix("tzid=")))
                .unwrap_or("")
                .trim_matches('"')
                .to_owned();
            format!("{tzid}|{}", line.value().trim())
        }
    }
}

fn line_text(text: &str) -> Line {
    Line {
        raw: format!("{text}\r\n"),
        unfolded: text.to_owned(),
    }
}

fn stub_of(component: &Component) -> Component {
    let mut items: Vec<Item> = Vec::new();
    for name in ["UID", "RECURRENCE-ID"] {
        if let Some(line) = line_named(component, name) {
            items.push(Item::Line(line.clone()));
        }
    }
    items.extend(component.items.iter().filter(|i| is_per_user(i)).cloned());
    Component {
        name: component.name.clone(),
        begin: component.begin.clone(),
        items,
        end: component.end.clone(),
    }
}

/// Splits a calendar object into the part everybody shares and the part
/// that belongs to the user who wrote it. Returns `None` when the text
/// does not nest properly (the calendar core has validated it by then, so
/// this only guards).
pub fn split_per_user(text: &str) -> Option<(String, String)> {
    let root = parse(text)?;
    let mut shared = root.clone();
    let mut parts = Component {
        name: "VCALENDAR".into(),
        begin: line_text("BEGIN:VCALENDAR"),
        items: vec![
            Item::Line(line_text("VERSION:2.0")),
            Item::Line(line_text("PRODID:-//Tocsin//per-user data//EN")),
        ],
        end: Some(line_text("END:VCALENDAR")),
    };
    for item in &mut shared.items {
        let Item::Component(component) = item else {
            continue;
        };
        if component.name == "VTIMEZONE" {
            parts.items.push(Item::Component(component.clone()));
        } else if is_object_component(&component.name) {
            parts.items.push(Item::Component(stub_of(component)));
            component.items.retain(|i| !is_per_user(i));
        }
    }
    let mut shared_text = String::with_capacity(text.len());
    write(&shared, &mut shared_text);
    let mut parts_text = String::new();
    write(&parts, &mut parts_text);
    Some((shared_text, parts_text))
}

/// A user's view: the shared part with their own alarms and transparency
/// put back into each component (a component with no stub gets none).
pub fn merge_per_user(shared: &str, parts: &str) -> Option<String> {
    let mut root = parse(shared)?;
    let parts = parse(parts)?;
    let stubs: Vec<&Component> = parts
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Component(c) if is_object_component(&c.name) => Some(c),
            _ => None,
        })
        .collect();
    for item in &mut root.items {
        let Item::Component(component) = item else {
            continue;
        };
        if !is_object_component(&component.name) {
            continue;
        }
        component.items.retain(|i| !is_per_user(i));
        let key = instance_key(component);
        if let Some(stub) = stubs.iter().find(|s| instance_key(s) == key) {
            component
                .items
                .extend(stub.items.iter().filter(|i| is_per_user(i)).cloned());
        }
    }
    let mut out = String::with_capacity(shared.len() * 2);
    write(&root, &mut out);
    Some(out)
}

/// The shared part alone: what a user with no per-user data sees.
pub fn strip_per_user(text: &str) -> Option<String> {
    split_per_user(text).map(|(shared, _)| shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n\
BEGIN:VEVENT\r\nUID:u1\r\nDTSTART:20270101T100000Z\r\nSUMMARY:A long\r\n  folded summary\r\nTRANSP:OPAQUE\r\n\
RRULE:FREQ=DAILY\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:u1\r\nRECURRENCE-ID:20270102T100000Z\r\nDTSTART:20270102T120000Z\r\nSUMMARY:Moved\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn a_split_takes_alarms_and_transparency_out_and_keeps_every_other_line() {
        let (shared, parts) = split_per_user(OBJECT).unwrap();
        assert!(!shared.contains("VALARM") && !shared.contains("TRANSP"));
        assert!(
            shared.contains("SUMMARY:A long\r\n  folded summary\r\n"),
            "folding kept"
        );
        assert!(shared.contains("RRULE:FREQ=DAILY\r\n"));
        assert!(parts.contains("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM"));
        assert!(parts.contains("TRANSP:OPAQUE"));
        // A stub for the override too, without alarms of its own.
        assert_eq!(parts.matches("BEGIN:VEVENT").count(), 2);
        assert!(parts.contains("RECURRENCE-ID:20270102T100000Z"));
    }

    #[test]
    fn merging_a_split_gives_the_user_back_their_alarms() {
        let (shared, parts) = split_per_user(OBJECT).unwrap();
        let merged = merge_per_user(&shared, &parts).unwrap();
        let (again_shared, again_parts) = split_per_user(&merged).unwrap();
        assert_eq!(again_shared, shared);
        assert_eq!(again_parts, parts);
        assert!(merged.contains("TRIGGER:-PT15M"));
    }

    #[test]
    fn another_users_parts_replace_the_writers() {
        let (shared, _) = split_per_user(OBJECT).unwrap();
        let theirs = OBJECT.replace("TRIGGER:-PT15M", "TRIGGER:-PT5M");
        let (_, their_parts) = split_per_user(&theirs).unwrap();
        let view = merge_per_user(&shared, &their_parts).unwrap();
        assert!(view.contains("TRIGGER:-PT5M") && !view.contains("TRIGGER:-PT15M"));
    }

    #[test]
    fn the_per_user_text_reads_as_an_alarm_overlay() {
        let (_, parts) = split_per_user(OBJECT).unwrap();
        assert!(crate::AlarmOverlay::parse(&parts).is_ok());
    }

    #[test]
    fn unbalanced_text_is_refused() {
        assert!(split_per_user("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n").is_none());
        assert!(split_per_user("").is_none());
    }
}
