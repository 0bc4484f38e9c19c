//! Prints how each given file parses (a development aid).
fn main() {
    for path in std::env::args().skip(1) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).to_string();
        match tocsin_calendar::CalendarObject::parse(&text, &tocsin_calendar::Limits::default()) {
            Ok(o) => println!("{path}: ok {}", o.uid()),
            Err(e) => println!("{path}: {e}"),
        }
    }
}
