"""The verdict on a run: every alarm that was due, against what the
receiver got, and every write a client saw acknowledged, against what the
nodes hold.

It fails on any lost alarm, any early one, and any duplicate that lacks
the first delivery's idempotency key (DESIGN.md, "what exactly once means
here"). Keyed duplicates are allowed and counted.
"""

from collections import defaultdict
from statistics import median


def verdict(expected, deliveries, now):
    """`expected`: {(uid, trigger_iso): trigger_epoch} of alarms that were
    due by `now`; `deliveries`: [(arrival_epoch, headers, body)]."""
    by_alarm = defaultdict(list)
    for arrival, headers, body in deliveries:
        by_alarm[(body["uid"], body["trigger"])].append((arrival, headers.get("idempotency-key"), headers))
    lost = [a for a in expected if a not in by_alarm]
    early, lateness, keyed, unkeyed = [], [], 0, 0
    for alarm, trigger in expected.items():
        got = sorted(by_alarm.get(alarm, []))
        if not got:
            continue
        lateness.append(got[0][0] - trigger)
        early += [alarm for arrival, _, _ in got if arrival < trigger]
        # One alarm reaches this receiver under one key: every further
        # delivery under the same key is a keyed duplicate (a receiver can
        # drop it); a second key for the same alarm is an unkeyed one.
        keys = {key for _, key, _ in got}
        keyed += len(got) - len(keys)
        unkeyed += len(keys) - 1
    report = {
        "expected": len(expected),
        "delivered": len(expected) - len(lost),
        "lost": lost,
        "early": early,
        "duplicates_keyed": keyed,
        "duplicates_unkeyed": unkeyed,
        "late_p50_s": round(median(lateness), 3) if lateness else None,
        "late_max_s": round(max(lateness), 3) if lateness else None,
    }
    return report


def print_verdict(report, label=""):
    print(
        f"verdict {label}: expected {report['expected']}, delivered {report['delivered']}, "
        f"lost {len(report['lost'])}, early {len(report['early'])}, "
        f"duplicates keyed {report['duplicates_keyed']} / unkeyed {report['duplicates_unkeyed']}, "
        f"lateness p50 {report['late_p50_s']} s, max {report['late_max_s']} s"
    )


def assert_good(report):
    assert report["lost"] == [], f"lost alarms: {report['lost'][:10]}"
    assert report["early"] == [], f"early alarms: {report['early'][:10]}"
    assert report["duplicates_unkeyed"] == 0, "a duplicate without the first delivery's key"
