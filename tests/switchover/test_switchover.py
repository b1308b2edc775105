"""Planned switchover and switchback end to end: a wazo-ha master, a wazo-ha slave watching it, a phone.

The master's telephony is sipp under monit (a stand-in for Asterisk: it answers
SIP OPTIONS as Asterisk does); everything else is the real code: the CLI on
each node, the slave's ``wazo-ha watch``, the sip and icmp probes, monit.
Watch: a round every 1 s, fall 3, rise 3, stability 3 s.
"""

from __future__ import annotations

import json
import subprocess
import time

from tests.rig.ha import WAZO_HA
from tests.rig.switchover import PhoneWatch
from tests.rig.waiting import wait_for

NO_SERVER_BOUND = 6.0  # fall (3 rounds of 1 s) + the stand-in's start + margin: a failover's time
QUIET = 8.0  # longer than rise (3 s) + stability (3 s): a wrong failback would happen in it


def run_in_background(rig, *args: str) -> subprocess.Popen:
    return rig.master.popen(
        [WAZO_HA, "--config", str(rig.master_config), *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=rig.env(),
    )


def switch_over(rig) -> tuple[dict, PhoneWatch]:
    phone = PhoneWatch(rig)
    process = run_in_background(rig, "switchover")
    phone.poll_until(lambda seen: bool(seen.slave) and process.poll() is not None, 30)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return json.loads(out), phone


def test_switchover_moves_telephony_and_the_slave_keeps_it(ha):
    figures, phone = switch_over(ha)

    gap = phone.gap()
    print(f"\n[switchover] no server for {figures['no_server_seconds']} s (journaled), phone saw a gap of {gap:.2f} s")
    assert figures["no_server_seconds"] <= NO_SERVER_BOUND
    assert gap is not None and gap <= figures["no_server_seconds"] + 0.2
    assert ha.slave_answers(0.5) and not ha.master_answers(0.5)
    [event] = ha.master_events("switchover")[:1]
    assert event.outcome == "ok" and "phones had no server" in event.message
    # The master's host answers but its SIP does not: the slave's watch must not give back.
    end = time.monotonic() + QUIET
    while time.monotonic() < end:
        assert ha.slave_answers(0.2), "the slave stopped serving while the master's services are stopped"
        assert not ha.master_standin_running(), "something restarted the master's telephony"
    status = json.loads(ha.master_wazo_ha("status", "--json").stdout)
    assert status["switched_over"]["peer"] == ha.slave.address


def test_switchback_gives_telephony_back_without_a_gap(ha):
    switch_over(ha)
    phone = PhoneWatch(ha)
    process = run_in_background(ha, "switchback")

    phone.poll_until(lambda seen: process.poll() is not None, 90)

    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    figures = json.loads(out)
    print(f"\n[switchback] the slave gave back after {figures['gave_back_after']} s")
    assert ha.master_answers(0.5) and not ha.slave_answers(0.5)
    assert phone.master, "the master never answered during the switchback"
    # The phone always had a server: each poll found the master or the slave answering.
    assert not ha.master_store.plugin_state("core.switchover").get("switched")
    wait_for(lambda: ha.watch_role() == "standby", 15, "the slave's watch back to standby")


def test_switchover_refused_while_the_slave_is_paused(ha):
    ha.wazo_ha("pause", "--reason", "slave maintenance")
    override = ha.master_config.parent / "conf.d" / "peer.yml"
    override.parent.mkdir(exist_ok=True)
    override.write_text(f"switchover:\n  peer_store_url: sqlite:///{ha.root}/var/lib/wazo-ha/state.db\n")
    try:
        done = ha.master_wazo_ha("switchover", check=False)
    finally:
        override.unlink()

    assert done.returncode != 0
    assert "the slave's watch is paused since" in done.stderr and "slave maintenance" in done.stderr
    assert ha.master_answers(0.5) and not ha.slave_answers(0.5)
    assert ha.master_events("switchover")[0].outcome == "refused"


def test_switchover_refused_while_the_slave_serves_already(ha):
    ha.kill_master_sip()
    wait_for(lambda: ha.slave_answers(), 10, "the slave taking over")
    ha.wazo_ha("pause", "--reason", "hold the failback")  # the slave keeps serving while the master is back
    ha.start_master_sip()

    done = ha.master_wazo_ha("switchover", check=False)

    assert done.returncode != 0 and "already answers SIP" in done.stderr


def test_a_slave_that_does_not_take_over_puts_telephony_back_here(ha):
    ha.wazo_ha("pause", "--reason", "not told to the master")  # no peer_store_url: not seen beforehand

    done = ha.master_wazo_ha("switchover", "--timeout", "5", check=False)

    assert done.returncode != 0 and "did not answer SIP within 5 s" in done.stderr
    assert ha.master_answers(1.0)
    assert ha.master_events("switchover")[0].outcome == "failed"
