"""Journal listeners: the mail to root, the embedding application's hooks, the metrics file, the log file."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta

import pytest

from wazo_ha_core.journal import Event
from wazo_ha_core.logs import LOG_FORMAT, setup_logging

# sendmail cannot be a real MTA here: this stand-in follows sendmail's
# interface (`sendmail -t -oi`, message on stdin) and records what it got.
FAKE_SENDMAIL = """#!/bin/sh
printf '%s\\n' "$*" > "{out}.argv"
cat > "{out}"
"""


@pytest.fixture
def sendmail(tmp_path):
    script = tmp_path / "sendmail"
    out = tmp_path / "mail.txt"
    script.write_text(FAKE_SENDMAIL.format(out=out))
    script.chmod(0o755)
    return script, out


def event(kind, outcome, minutes=0, **figures):
    start = datetime(2026, 11, 26, 3, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    return Event(kind=kind, started_at=start, ended_at=start + timedelta(seconds=2), outcome=outcome, figures=figures)


@pytest.mark.parametrize(
    ("kind", "outcome", "subject"),
    [
        ("replication", "failed", "replication failed"),
        ("sync", "failed", "sync failed"),
        ("failover", "ok", "failover"),
        ("failback", "ok", "failback"),
        ("copy-back", "failed", "copy-back failed"),
        ("copy-back", "partial", "copy-back left items on the slave"),
    ],
)
def test_each_notifiable_event_mails_root_and_calls_hooks(make_engine, sendmail, kind, outcome, subject):
    script, out = sendmail
    engine = make_engine(notifications={"sendmail": str(script)})
    heard = []
    engine.notifier.hooks.append(lambda subj, ev: heard.append((subj, ev.kind)))
    engine.journal.append(Event(kind=kind, started_at=datetime.now(UTC), outcome=outcome, message="slave 10.0.0.2: x"))
    assert len(heard) == 1 and subject in heard[0][0] and heard[0][1] == kind
    mail = out.read_text()
    assert "To: root" in mail and "Subject: wazo-ha on " in mail and subject in mail
    assert "slave 10.0.0.2: x" in mail
    assert out.with_suffix(".txt.argv").read_text().split() == ["-t", "-oi"]


@pytest.mark.parametrize(("kind", "outcome"), [("replication", "ok"), ("replication", "skipped"), ("edit", "failed")])
def test_routine_events_send_nothing(make_engine, sendmail, kind, outcome):
    script, out = sendmail
    engine = make_engine(notifications={"sendmail": str(script)})
    heard = []
    engine.notifier.hooks.append(lambda subj, ev: heard.append(subj))
    engine.journal.append(Event(kind=kind, started_at=datetime.now(UTC), outcome=outcome))
    assert heard == [] and not out.exists()


def test_missing_sendmail_or_broken_hook_never_fails_the_operation(make_engine, tmp_path, caplog):
    engine = make_engine(notifications={"sendmail": str(tmp_path / "no-sendmail")})
    engine.notifier.hooks.append(lambda subj, ev: 1 / 0)
    with caplog.at_level(logging.WARNING):
        engine.journal.append(Event(kind="failover", started_at=datetime.now(UTC)))
    assert "no-sendmail" in caplog.text
    assert engine.store.events()[0].kind == "failover"


def test_no_mail_when_mail_to_is_empty(make_engine, sendmail):
    script, out = sendmail
    engine = make_engine(notifications={"sendmail": str(script), "mail_to": None})
    engine.journal.append(Event(kind="failover", started_at=datetime.now(UTC)))
    assert not out.exists()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(f"wazo_ha_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from:\n{text}")


def test_metrics_file_follows_the_journal(make_engine, sandbox):
    engine = make_engine()
    path = sandbox / "var/lib/prometheus/node-exporter/wazo_ha.prom"
    engine.journal.append(event("replication", "ok", 0, bytes=1234, statuses_to_master=3))
    engine.journal.append(event("replication", "failed", 1))
    engine.journal.append(event("sync", "ok", 2))
    text = path.read_text()
    assert metric(text, "last_replication_bytes") == 1234
    assert metric(text, "last_replication_user_statuses_to_master") == 3
    assert metric(text, "last_replication_duration_seconds") == 2
    assert metric(text, "last_replication_timestamp_seconds") == event("replication", "ok", 0).ended_at.timestamp()
    assert metric(text, "last_sync_timestamp_seconds") == event("sync", "ok", 2).ended_at.timestamp()
    assert metric(text, "master_up") == 1 and metric(text, "failovers_total") == 0
    engine.journal.append(event("failover", "ok", 3))
    text = path.read_text()
    assert metric(text, "master_up") == 0 and metric(text, "failovers_total") == 1
    engine.journal.append(event("failback", "ok", 4))
    engine.journal.append(event("failover", "ok", 5))
    assert metric(path.read_text(), "failovers_total") == 2
    assert "# TYPE wazo_ha_failovers_total counter" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_log_file_gets_wazo_format(tmp_path):
    log_file = tmp_path / "log" / "wazo-ha.log"
    setup_logging(verbose=False, quiet=True, log_file=log_file)
    try:
        logging.getLogger("wazo_ha.test").info("replication of %d tables", 3)
        logging.getLogger("wazo_ha.test").debug("not in the file without --verbose")
        for handler in logging.getLogger().handlers:
            handler.flush()
        line = log_file.read_text().strip()
        assert line.endswith("(INFO) (wazo_ha.test): replication of 3 tables")
        assert "[" in line and "debug" not in line
        assert stat.S_IMODE(log_file.stat().st_mode) == 0o640
        assert "%(process)d" in LOG_FORMAT
    finally:
        setup_logging(verbose=False, quiet=False)


def test_unwritable_log_file_is_not_fatal(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        setup_logging(verbose=False, quiet=False, log_file=blocker / "wazo-ha.log")
    assert "cannot write the log file" in caplog.text
    setup_logging(verbose=False, quiet=False)


def test_metrics_show_the_last_copy_back_and_whether_items_are_pending(make_engine, sandbox):
    engine = make_engine()
    path = sandbox / "var/lib/prometheus/node-exporter/wazo_ha.prom"
    engine.journal.append(event("copy-back", "ok", 0, files=3, messages=2, rows_copied=40))
    text = path.read_text()
    assert metric(text, "last_copy_back_timestamp_seconds") == event("copy-back", "ok", 0).ended_at.timestamp()
    assert metric(text, "copy_back_pending") == 0
    assert (metric(text, "last_copy_back_files"), metric(text, "last_copy_back_rows_copied")) == (3, 40)
    engine.journal.append(event("copy-back", "partial", 1, files=1))
    text = path.read_text()
    assert metric(text, "copy_back_pending") == 1 and metric(text, "last_copy_back_files") == 1


def test_metrics_show_a_voicemail_spool_held_and_what_the_last_mirror_carried(make_engine, sandbox):
    engine = make_engine()
    path = sandbox / "var/lib/prometheus/node-exporter/wazo_ha.prom"
    engine.journal.append(event("sync", "ok", 0, voicemail="mirrored", voicemail_to_slave_copied=2))
    text = path.read_text()
    assert metric(text, "voicemail_held") == 0 and metric(text, "last_sync_voicemail_to_slave_copied") == 2
    engine.journal.append(event("sync", "ok", 1, voicemail="held", voicemail_copy_back_owed=3))
    assert metric(path.read_text(), "voicemail_held") == 3
