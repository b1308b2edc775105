"""``wazo-ha copy-back`` through the engine: pull over the real sshd + rsync, merge, journal, status, CLI.

Rows are not part of this environment (no PostgreSQL here): ``plugins.replication`` is empty, so the
run reports that no replication plugin copied rows (tests/plugins/pg_dump covers the rows).
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.unit.test_voicemail_merge import metadata

from .conftest import PEER, write
from .test_sync import snapshot

BOX = "var/spool/asterisk/voicemail/default/1001"
MONITOR = "var/lib/wazo/sounds/tenants/t1/monitor"


def prepare(pair):
    pair.tree["plugins"]["replication"] = []
    pair.config_file.write_text(yaml.safe_dump(pair.tree))
    (pair.master / "var/lib/wazo/sounds/tenants/t1").mkdir(parents=True)
    pair.pin()
    pair.plugin().init(PEER)
    for number, key in ((0, "m0"), (1, "m1")):
        write(pair.master / BOX / "INBOX" / f"msg{number:04d}.txt", metadata(100 + number, msg_id=f"m-{key}"))
        write(pair.master / BOX / "INBOX" / f"msg{number:04d}.wav", f"master {key}")
    for number, key in ((0, "s0"), (1, "s1")):
        write(pair.slave / BOX / "INBOX" / f"msg{number:04d}.txt", metadata(500 + number, msg_id=f"s-{key}"))
        write(pair.slave / BOX / "INBOX" / f"msg{number:04d}.wav", f"slave {key}")
    write(pair.slave / MONITOR / "rec-1.wav", b"recording one")
    write(pair.slave / MONITOR / "rec-clash.wav", b"slave version")
    write(pair.master / MONITOR / "rec-clash.wav", b"master version")


def cli(pair, *args):
    return subprocess.run(
        [sys.executable, "-m", "wazo_ha_core.cli.main", "--config", str(pair.config_file), "copy-back", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_copy_back_by_hand_dry_run_then_for_real_journaled_and_shown_in_status(pair):
    prepare(pair)
    engine = pair.engine("master")
    slave_before = {relative: snapshot(pair.slave, relative) for relative in (BOX, MONITOR)}

    dry = cli(pair, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    listed = json.loads(dry.stdout)["would_copy"]
    assert "voicemail/default/1001/INBOX/msg0002.wav" in listed and any("rec-1.wav" in path for path in listed)
    assert not (pair.master / BOX / "INBOX" / "msg0002.txt").exists()

    done = cli(pair, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1  # the clashing recording stays on the slave: reported, exit 1
    assert report["outcome"] == "partial" and any("rec-clash.wav" in w for w in report["warnings"])
    assert report["figures"]["messages"] == 2 and report["figures"]["messages_renumbered"] == 2
    assert (pair.master / BOX / "INBOX" / "msg0003.wav").read_text() == "slave s1"
    assert (pair.master / MONITOR / "rec-1.wav").read_bytes() == b"recording one"
    assert (pair.master / MONITOR / "rec-clash.wav").read_bytes() == b"master version"
    assert {relative: snapshot(pair.slave, relative) for relative in (BOX, MONITOR)} == slave_before

    last = engine.status()["last"]["copy-back"]
    assert last is not None and last["outcome"] == "partial"
    assert last["figures"]["files"] == 5 and last["figures"]["messages_renumbered"] == 2

    again = engine.copy_back()
    assert again.figures["messages"] == 0 and again.figures["files"] == 0


def test_copy_back_is_refused_on_a_slave_and_journaled(pair):
    prepare(pair)
    pair.engine("slave")
    result = cli(pair)
    assert result.returncode == 1 and "copy-back runs on the master" in result.stderr
