"""Independent oracle for tests/differential.rs: Python icalendar +
recurring-ical-events (+ dateutil).

Usage: oracle.py sync FILE              -> per record, the first occurrences of an RRULE
       oracle.py occurrences FILE ZONE -> per record, occurrences in a window
       oracle.py alarms FILE ZONE      -> per record, alarm triggers in a window

Records are separated by a line '#####'. The first line of a record is its
header; the rest (if any) is the payload. Output: one line per record,
'ID|...' or 'ID|ERR message'. Floating and all-day values are read in ZONE.
This script is test tooling only; it never touches the network.
"""

import datetime
import sys
import zoneinfo
from itertools import islice

import icalendar
import recurring_ical_events
from dateutil.rrule import rrulestr

SYNC_COUNT = 8


def records(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for chunk in text.split("\n#####\n"):
        if not chunk.strip():
            continue
        header, _, payload = chunk.partition("\n")
        yield header.strip(), payload


def sync(path):
    out = []
    for header, _ in records(path):
        rid, start, rule = header.split("|", 2)
        try:
            if len(start) == 8:
                dt = datetime.datetime.strptime(start, "%Y%m%d")
            else:
                dt = datetime.datetime.strptime(start, "%Y%m%dT%H%M%S")
            parts = [p for p in rule.split(";") if not p.startswith("UNTIL=") and not p.startswith("COUNT=")]
            occ = list(islice(rrulestr(";".join(parts), dtstart=dt), SYNC_COUNT))
            fmt = "%Y%m%d" if len(start) == 8 else "%Y%m%dT%H%M%S"
            out.append(rid + "|" + ",".join(o.strftime(fmt) for o in occ))
        except Exception as e:  # report, never crash the run
            out.append(f"{rid}|ERR {type(e).__name__}: {e}")
    print("\n".join(out))


def to_epoch(value, zone):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return int(value.timestamp())
    return int(datetime.datetime(value.year, value.month, value.day, tzinfo=zone).timestamp())


def windowed(path, zone_name, query):
    """Run query(cal, zone, start, end, w0, w1) -> list per record."""
    zone = zoneinfo.ZoneInfo(zone_name)
    out = []
    for header, payload in records(path):
        rid, w0, w1 = header.split("|")
        w0, w1 = int(w0), int(w1)
        try:
            cal = icalendar.Calendar.from_ical(payload)
            start = datetime.datetime.fromtimestamp(w0 - 3 * 86400, datetime.timezone.utc)
            end = datetime.datetime.fromtimestamp(w1 + 3 * 86400, datetime.timezone.utc)
            found = sorted(query(cal, zone, start, end, w0, w1))
            out.append(rid + "|" + ";".join(found_text(f) for f in found))
        except Exception as e:  # report, never crash the run
            out.append(f"{rid}|ERR {type(e).__name__}: {e}")
    print("\n".join(out))


def found_text(item):
    if isinstance(item, tuple):
        return f"{item[0]},{item[1]}"
    return str(item)


def occurrences_query(cal, zone, start, end, w0, w1):
    for ev in recurring_ical_events.of(cal).between(start, end):
        s = to_epoch(ev["DTSTART"].dt, zone)
        e = to_epoch(ev["DTEND"].dt, zone) if "DTEND" in ev else s
        if w0 <= s < w1:
            yield (s, e)


def alarms_query(cal, zone, start, end, w0, w1):
    for ev in recurring_ical_events.of(cal, components=["VALARM"]).between(start, end):
        for alarm in ev.subcomponents:
            t = to_epoch(alarm["TRIGGER"].dt, zone)
            if w0 <= t < w1:
                yield t


def main():
    mode = sys.argv[1]
    if mode == "sync":
        sync(sys.argv[2])
    elif mode == "occurrences":
        windowed(sys.argv[2], sys.argv[3], occurrences_query)
    elif mode == "alarms":
        windowed(sys.argv[2], sys.argv[3], alarms_query)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
