"""End-to-end: Tocsin's alarms reach a real webhook receiver and a real
SMTP server (aiosmtpd), with events written through the python caldav
client. Triggers are set a few seconds ahead of the wall clock.

DESIGN.md invariants are cited by number.
"""

import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
import tempfile

import caldav
import pytest

from conftest import Server
from receivers import SmtpSink, WebhookSink

UTC = timezone.utc
LEAD_S = 3  # seconds between writing an event and its alarm


def ical_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(uid, start, end, extra="", alarms=None, summary="Alarm test"):
    alarms = ["-PT10M"] if alarms is None else alarms
    valarms = "".join(
        f"BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:r\r\nTRIGGER:{a}\r\nEND:VALARM\r\n" for a in alarms
    )
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{ical_time(start)}\r\nDTEND:{ical_time(end)}\r\n"
        f"SUMMARY:{summary}\r\n{extra}{valarms}END:VEVENT\r\n"
    )


def vcalendar(*components):
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tocsin-tests//EN\r\n" + "".join(components) + "END:VCALENDAR\r\n"


def event_with_alarm_in(seconds, uid=None, minutes_before=10):
    """An event whose alarm (minutes_before the start) rings `seconds` from now."""
    uid = uid or "al-" + uuid.uuid4().hex[:10]
    trigger = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    start = trigger + timedelta(minutes=minutes_before)
    return uid, trigger, vcalendar(vevent(uid, start, start + timedelta(hours=1), alarms=[f"-PT{minutes_before}M"]))


@pytest.fixture(scope="module")
def sinks():
    hook = WebhookSink()
    smtp = SmtpSink()
    smtp.start()
    yield hook, smtp
    hook.stop()
    smtp.stop()


@pytest.fixture(scope="module")
def alarm_server(sinks):
    hook, smtp = sinks
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = Path(tmp) / "tocsin.toml"
        config.write_text(
            # Two instances a few seconds apart must both ring here, so the
            # flood guard (60 s by default) is lowered.
            "[alarms]\nretry_delay_initial_secs = 1\nretry_delay_max_secs = 2\nsend_timeout_ms = 2000\n"
            "min_instance_interval_secs = 1\n"
            f'smtp_from = "Tocsin <alarms@tocsin.test>"\n'
        )
        server = Server(data, ["--config", str(config), "--webhook-url", hook.url + "/hook",
                               "--smtp-url", f"smtp://127.0.0.1:{smtp.port}"])
        server.add_user("carol", "carol-pw", "carol@example.com")
        try:
            yield server
        finally:
            server.stop()


def calendar_of(server, user="carol"):
    client = caldav.DAVClient(url=server.url + "/", username=user, password=f"{user}-pw")
    return client.principal().calendars()[0]


def delivered_at_or_after_trigger(delivery, trigger):
    received = delivery[0]
    assert received >= trigger.timestamp(), f"delivered {trigger.timestamp() - received:.3f}s early"
    return received - trigger.timestamp()


def test_a_single_alarm_is_delivered_on_time_by_webhook_log_and_email(alarm_server, sinks):
    hook, smtp = sinks
    calendar = calendar_of(alarm_server)
    uid, trigger, text = event_with_alarm_in(LEAD_S)
    calendar.save_event(text)
    [delivery] = hook.wait_for(uid)
    late = delivered_at_or_after_trigger(delivery, trigger)
    assert late < 1.0, f"{late:.3f}s late"
    body, headers = delivery[3], delivery[2]
    assert body["trigger"] == trigger.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["recurrence_id"] is None and body["user"] == "carol" and body["action"] == "DISPLAY"
    assert headers["idempotency-key"] == body["idempotency_key"]
    mails = [m for m in smtp.wait_for("Alarm test", count=1) if uid in m[2].get_body(("plain",)).get_content() or True]
    log = alarm_server.alarm_log("carol")
    email_entry = next(e for e in log if e["channel"] == "email" and body["uid"] in e["payload"])
    mail = next(m for m in smtp.messages if m[2]["Message-ID"] == f"<{email_entry['key']}@tocsin.alarm>")
    assert mail[1] == ["carol@example.com"]
    assert "Alarm test" in mail[2]["Subject"]
    assert mail[2].get_body(("plain",)).get_content().startswith("What: Alarm test")
    assert mail[2].get_body(("html",)) is not None
    assert email_entry["state"] == "delivered"


def test_a_recurring_event_and_its_override_ring_per_instance(alarm_server, sinks):
    hook, _ = sinks
    calendar = calendar_of(alarm_server)
    uid = "rec-" + uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    # A daily event whose instance today has its alarm LEAD_S from now; it
    # started three days ago. Tomorrow's instance is moved by an override
    # to ring LEAD_S + 2 seconds from now instead of tomorrow.
    today_start = now + timedelta(seconds=LEAD_S, minutes=10)
    master = vevent(uid, today_start - timedelta(days=3), today_start - timedelta(days=3) + timedelta(hours=1),
                    extra="RRULE:FREQ=DAILY;COUNT=10\r\n")
    moved_start = now + timedelta(seconds=LEAD_S + 2, minutes=10)
    override = vevent(uid, moved_start, moved_start + timedelta(hours=1),
                      extra=f"RECURRENCE-ID:{ical_time(today_start + timedelta(days=1))}\r\nSEQUENCE:3\r\n",
                      summary="Moved instance")
    calendar.save_event(vcalendar(master, override))
    deliveries = hook.wait_for(uid, count=2)
    by_rid = {d[3]["recurrence_id"]: d for d in deliveries}
    assert set(by_rid) == {ical_time(today_start), ical_time(today_start + timedelta(days=1))}
    delivered_at_or_after_trigger(by_rid[ical_time(today_start)], today_start - timedelta(minutes=10))
    moved = by_rid[ical_time(today_start + timedelta(days=1))]
    assert moved[3]["summary"] == "Moved instance"
    delivered_at_or_after_trigger(moved, moved_start - timedelta(minutes=10))
    time.sleep(1)
    assert len(hook.deliveries(uid)) == 2, "an instance rang twice"


def test_an_alarm_moved_earlier_rings_at_the_earlier_time_the_seeds_bug(alarm_server, sinks):
    # Cyrus copied the stored (later) next-alarm value over the record's
    # earlier one on replication, so the earlier alarm was missed.
    # Invariant 4: every write recomputes next_check from the object.
    hook, _ = sinks
    calendar = calendar_of(alarm_server)
    uid, _, text = event_with_alarm_in(600)
    event = calendar.save_event(text)
    _, trigger, earlier = event_with_alarm_in(LEAD_S, uid=uid)
    event.data = earlier
    event.save()
    [delivery] = hook.wait_for(uid)
    assert delivered_at_or_after_trigger(delivery, trigger) < 1.0


def test_an_event_rescheduled_after_its_alarm_rang_rings_again(alarm_server, sinks):
    # Invariant 7: an alarm moved past the watermark fires again.
    hook, _ = sinks
    calendar = calendar_of(alarm_server)
    uid, first_trigger, text = event_with_alarm_in(2)
    event = calendar.save_event(text)
    hook.wait_for(uid)
    _, second_trigger, later = event_with_alarm_in(LEAD_S, uid=uid)
    event.data = later
    event.save()
    deliveries = hook.wait_for(uid, count=2)
    assert [d[3]["trigger"] for d in deliveries] == [
        first_trigger.strftime("%Y-%m-%dT%H:%M:%SZ"), second_trigger.strftime("%Y-%m-%dT%H:%M:%SZ")
    ]


def test_an_edit_that_changes_no_time_after_the_alarm_rang_does_not_ring_again(alarm_server, sinks):
    # Invariant 7: an edit keeps the watermark.
    hook, _ = sinks
    calendar = calendar_of(alarm_server)
    uid, _, text = event_with_alarm_in(2)
    event = calendar.save_event(text)
    hook.wait_for(uid)
    event.data = text.replace("SUMMARY:Alarm test", "SUMMARY:Alarm test, renamed")
    event.save()
    time.sleep(2)
    assert len(hook.deliveries(uid)) == 1


def test_an_event_deleted_before_its_alarm_never_rings(alarm_server, sinks):
    hook, _ = sinks
    calendar = calendar_of(alarm_server)
    uid, _, text = event_with_alarm_in(LEAD_S)
    calendar.save_event(text).delete()
    time.sleep(LEAD_S + 1.5)
    assert hook.deliveries(uid) == []


def test_cancelled_and_declined_instances_do_not_ring(alarm_server, sinks):
    hook, _ = sinks
    calendar = calendar_of(alarm_server)
    now = datetime.now(UTC).replace(microsecond=0)
    first = now + timedelta(seconds=LEAD_S, minutes=10)
    uid = "cd-" + uuid.uuid4().hex[:8]
    master = vevent(uid, first, first + timedelta(hours=1), extra="RRULE:FREQ=DAILY;COUNT=3\r\n")
    cancelled = vevent(uid, first, first + timedelta(hours=1),
                       extra=f"RECURRENCE-ID:{ical_time(first)}\r\nSTATUS:CANCELLED\r\n")
    declined_uid = "dc-" + uuid.uuid4().hex[:8]
    declined = vevent(declined_uid, first, first + timedelta(hours=1),
                      extra="ORGANIZER:mailto:boss@example.com\r\n"
                            "ATTENDEE;PARTSTAT=DECLINED:mailto:carol@example.com\r\n")
    calendar.save_event(vcalendar(master, cancelled))
    calendar.save_event(vcalendar(declined))
    time.sleep(LEAD_S + 1.5)
    assert hook.deliveries(uid) == [] and hook.deliveries(declined_uid) == []


def test_a_webhook_answering_500_is_retried_with_the_same_key(alarm_server, sinks):
    hook, _ = sinks
    alarm_server.set_alarm_channels("carol", ["webhook"], hook.url + "/flaky")
    try:
        calendar = calendar_of(alarm_server)
        uid, _, text = event_with_alarm_in(LEAD_S)
        calendar.save_event(text)
        attempts = hook.wait_for(uid, count=2, path="/flaky")
        assert len(attempts) == 2
        keys = {a[2]["idempotency-key"] for a in attempts}
        assert len(keys) == 1, "a retry must carry the first attempt's key (invariant 6)"
        assert attempts[1][0] - attempts[0][0] >= 0.9, "retried before its backoff"
        time.sleep(1.5)
        assert len(hook.deliveries(uid, path="/flaky")) == 2
        log = alarm_server.alarm_log("carol")
        entry = next(e for e in log if e["key"] == keys.pop())
        assert entry["state"] == "delivered" and entry["attempts"] == 2
    finally:
        alarm_server.set_alarm_channels("carol", ["log", "webhook", "email"], None)


def test_an_email_alarm_goes_only_to_the_owners_own_addresses(alarm_server, sinks):
    _, smtp = sinks
    calendar = calendar_of(alarm_server)
    uid = "em-" + uuid.uuid4().hex[:8]
    trigger = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_S)
    start = trigger + timedelta(minutes=5)
    email_alarm = (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{ical_time(start)}\r\nDURATION:PT1H\r\nSUMMARY:Mail me {uid}\r\n"
        "BEGIN:VALARM\r\nACTION:EMAIL\r\nSUMMARY:Mail me\r\nDESCRIPTION:body\r\nTRIGGER:-PT5M\r\n"
        "ATTENDEE:mailto:carol@example.com\r\nATTENDEE:mailto:stranger@example.org\r\nEND:VALARM\r\nEND:VEVENT\r\n"
    )
    calendar.save_event(vcalendar(email_alarm))
    mails = smtp.wait_for(uid, count=1)
    time.sleep(1)
    mails = smtp.wait_for(uid, count=1)
    recipients = sorted(r for m in mails for r in m[1])
    assert recipients == ["carol@example.com"], "a calendar server must not relay to strangers"


def test_smtp_down_for_a_while_is_retried_and_delivered_once_with_one_message_id(sinks):
    hook, _ = sinks
    smtp = SmtpSink()  # not started yet: the relay is down
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = Path(tmp) / "tocsin.toml"
        config.write_text("[alarms]\nretry_delay_initial_secs = 1\nretry_delay_max_secs = 1\nsend_timeout_ms = 1000\n")
        server = Server(data, ["--config", str(config), "--smtp-url", f"smtp://127.0.0.1:{smtp.port}"])
        try:
            server.add_user("dave", "dave-pw", "dave@example.com")
            server.set_alarm_channels("dave", ["email"], None)
            calendar = calendar_of(server, "dave")
            uid, _, text = event_with_alarm_in(2)
            calendar.save_event(text.replace("SUMMARY:Alarm test", f"SUMMARY:Relay {uid}"))
            deadline = time.time() + 15
            while time.time() < deadline:
                entries = [e for e in server.alarm_log("dave") if e["channel"] == "email"]
                if entries and entries[0]["attempts"] >= 2:
                    break
                time.sleep(0.1)
            [entry] = [e for e in server.alarm_log("dave") if e["channel"] == "email"]
            assert entry["state"] == "pending" and entry["attempts"] >= 2 and entry["last_error"]
            smtp.start()
            mails = smtp.wait_for(uid, count=1)
            time.sleep(2.5)
            mails = smtp.wait_for(uid, count=1)
            assert len(mails) == 1
            assert mails[0][2]["Message-ID"] == f"<{entry['key']}@tocsin.alarm>"
            [entry] = [e for e in server.alarm_log("dave") if e["channel"] == "email"]
            assert entry["state"] == "delivered"
        finally:
            server.stop()
            smtp.stop()


def test_alarms_due_while_the_server_was_down_are_delivered_late_or_skipped_with_a_reason(sinks):
    # Invariant 8: after downtime an overdue alarm within the lateness
    # window is delivered (marked late); an older one is recorded skipped.
    hook, _ = sinks
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = Path(tmp) / "tocsin.toml"
        config.write_text("[alarms]\nlateness_window_secs = 4\n")
        args = ["--config", str(config), "--webhook-url", hook.url + "/downtime"]
        server = Server(data, args)
        server.add_user("erin", "erin-pw", "erin@example.com")
        calendar = calendar_of(server, "erin")
        old_uid, _, old = event_with_alarm_in(2)
        recent_uid, recent_trigger, recent = event_with_alarm_in(6)
        calendar.save_event(old)
        calendar.save_event(recent)
        server.kill()
        time.sleep(8)  # old: ~6 s overdue (beyond 4 s); recent: ~2 s overdue
        server = Server(data, args)
        try:
            [late] = hook.wait_for(recent_uid, path="/downtime")
            assert late[3]["late_seconds"] >= 1.0
            assert late[0] >= recent_trigger.timestamp()
            time.sleep(1)
            assert hook.deliveries(old_uid, path="/downtime") == []
            skipped = [e for e in server.alarm_log("erin") if old_uid in e["payload"]]
            assert skipped and all(e["state"] == "skipped" for e in skipped)
            assert "beyond the lateness window" in skipped[0]["last_error"]
        finally:
            server.stop()


def test_changing_the_calendars_time_zone_moves_floating_alarms(alarm_server, sinks):
    hook, _ = sinks
    principal = caldav.DAVClient(url=alarm_server.url + "/", username="carol", password="carol-pw").principal()
    calendar = principal.make_calendar(name="Floating", cal_id="floating-" + uuid.uuid4().hex[:6])
    uid = "fl-" + uuid.uuid4().hex[:8]
    # Floating 10 minutes after (trigger + 1 h): in UTC its alarm is an hour
    # away; in a UTC+01:00 zone it rings LEAD_S from now.
    trigger = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_S + 1)
    local_start = (trigger + timedelta(hours=1, minutes=10)).strftime("%Y%m%dT%H%M%S")
    floating = (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{local_start}\r\nDURATION:PT1H\r\n"
        "SUMMARY:Floating\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:r\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\n"
    )
    calendar.save_event(vcalendar(floating))
    plus_one = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:Africa/Lagos\r\n"
        "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\nEND:VCALENDAR\r\n"
    )
    calendar.set_properties([caldav.elements.cdav.CalendarTimeZone(plus_one)])
    [delivery] = hook.wait_for(uid, timeout=LEAD_S + 5)
    assert delivered_at_or_after_trigger(delivery, trigger) < 1.0
    assert delivery[3]["time_zone"] == "Africa/Lagos"
