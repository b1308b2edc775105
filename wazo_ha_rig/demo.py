"""``wazo-ha demo``: two Wazo-like nodes on one machine, HA enabled, a failover and a failback.

Everything lives in one private subnet that exists only inside the network
namespaces created here (an ``unreachable`` route for it is added in the root
namespace first), in one temporary directory, and in processes started here;
all of it is removed at the end, also on an error, Ctrl-C or SIGTERM.
The nodes are driven through the library's API (``HAEngine.update_ha()``,
``replicate()``, ``init_file_sync()``, ``sync_files()``) from a thread that
enters the node's namespace, and the slave's watch is ``wazo-ha watch`` run
in the slave's namespace, as an operator would run it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import demo_nodes as nodes
from . import waiting
from .netns import TestNetwork
from .sip import Phone, PhoneWatch

SUBNET = "10.203.7.0/24"  # the tests use 10.203.5.0/24
TAG = "demo"
FAILOVER_DEADLINE = 15.0
NEEDED_COMMANDS = ("ip", "psql", "sipp", "monit", "rsync", "ssh", "ssh-keygen", "openssl", "runuser", "unshare")


class Interrupted(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop and clean up."""


# The signal that arrived, kept until the run stops. Raising from the handler is not enough: Python runs
# it wherever the main thread is, and an exception raised inside a finaliser or a garbage collector's
# callback (SQLAlchemy's pools have some) is printed and dropped. The flag is checked at every step,
# line of output and poll, so a Ctrl-C is never lost.
_PENDING: list[type[KeyboardInterrupt]] = []


def _on_signal(signum, frame) -> None:
    _PENDING.append(Interrupted if signum == signal.SIGTERM else KeyboardInterrupt)
    raise _PENDING[-1]()


def raise_if_interrupted() -> None:
    if _PENDING:
        raise _PENDING[0]()


def wait_for(condition, timeout: float, what: str):
    """:func:`wazo_ha_rig.waiting.wait_for` that also stops on a pending Ctrl-C or SIGTERM."""

    def checked():
        raise_if_interrupted()
        return condition()

    return waiting.wait_for(checked, timeout, what)


class StepFailed(Exception):
    pass


@dataclass
class Step:
    name: str
    outcome: str = "not run"
    seconds: float | None = None
    detail: str = ""


class Demo:
    def __init__(
        self,
        schema_files: tuple[Path, Path],
        stability: float = 10.0,
        install: bool = True,
        out: Callable[[str], None] = print,
        subnet: str = SUBNET,
        tag: str = TAG,
    ):
        self.schema_files = schema_files
        self.subnet, self.tag = subnet, tag  # tests that build on the demo's nodes use their own subnet
        self.install = install
        self.stability = stability
        self.out = out
        self.started = time.monotonic()
        self.steps: list[Step] = []
        self.work: Path | None = None
        self.network: TestNetwork | None = None
        self.master: nodes.Node | None = None
        self.slave: nodes.Node | None = None
        self.phone: Phone | None = None
        self.watch: subprocess.Popen | None = None
        self.follower: subprocess.Popen | None = None
        self.journaled: dict[str, int] = {}
        self.cel_uniqueid = ""
        self.slave_message = ""

    # --- output ---------------------------------------------------------------------

    def say(self, text: str) -> None:
        raise_if_interrupted()
        self.out(f"[{time.monotonic() - self.started:5.1f}s] {text}")

    def detail(self, text: str) -> None:
        self.out(f"         {text}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        self.steps.append(step)
        began = time.monotonic()
        try:
            raise_if_interrupted()
            yield step
            raise_if_interrupted()
        except BaseException as exc:
            step.outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            if isinstance(exc, KeyboardInterrupt):
                step.detail = "SIGTERM" if isinstance(exc, Interrupted) else "Ctrl-C (SIGINT)"
            else:
                step.detail = step.detail or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        finally:
            step.seconds = time.monotonic() - began
        if step.outcome == "not run":
            step.outcome = "ok"

    # --- the run ----------------------------------------------------------------------

    def run(self) -> int:
        """The whole demo; returns the exit code (0: every step ok)."""
        _PENDING.clear()
        previous = signal.signal(signal.SIGTERM, _on_signal)
        previous_int = signal.signal(signal.SIGINT, _on_signal)
        code = 1
        try:
            self.scenario()
            code = 0
        except KeyboardInterrupt:
            code = self._interrupted()
        except Exception as exc:
            if _PENDING:  # the signal came first; what failed after it is its consequence
                code = self._interrupted()
            else:
                self.say(f"error: {exc}")
                self.show_logs()
        finally:
            # Nothing may stop the clean-up half-way.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if _PENDING:  # a signal that arrived after the scenario ended
                code = 130
            _PENDING.clear()
            try:
                self.teardown()
            finally:
                signal.signal(signal.SIGINT, previous_int)
                signal.signal(signal.SIGTERM, previous)
        self.print_summary()
        return code

    def _interrupted(self) -> int:
        _PENDING.clear()  # handled here: the clean-up's own output must not raise it again
        self.out("")
        self.say("interrupted: cleaning up")
        return 130

    def scenario(self) -> None:
        self.out(f"wazo-ha demo: a master and a slave as network namespaces in {SUBNET}, on this machine")
        self.out(f"  schema fixture: {self.schema_files[0].parent}")
        self.out(f"  stability window before a failback: {self.stability:g} s (30 s in production)")
        with self.step("check the machine (root, Debian packages)"):
            check_machine(self.install, self.say)
        with self.step("build the nodes"):
            self.build()
        with self.step("enable HA on the master (update_ha)"):
            self.enable_master()
        with self.step("enable HA on the slave (update_ha)"):
            self.enable_slave()
        with self.step("start the watch on the slave"):
            self.start_watch()
        with self.step("sync init (ssh key for the file sync)") as step:
            step.detail = self.sync_init()
        with self.step("first replication (pg_dump)") as step:
            step.detail = self.replicate()
        with self.step("first file sync (rsync)") as step:
            step.detail = self.sync()
        with self.step("config change on the master reaches the slave") as step:
            step.detail = self.config_change()
        with self.step("follow mode: an edit and a saved file reach the slave by themselves") as step:
            step.detail = self.follow()
        with self.step("the watch standing by (stability window)"):
            self.watch_standing_by()
        with self.step("failover: master cut, phone answered by the slave") as step:
            step.detail = self.failover()
        with self.step(f"failback after the {self.stability:g} s stability window") as step:
            step.detail = self.failback()
        with self.step("switchover: planned move of telephony to the slave") as step:
            step.detail = self.switchover()
        with self.step("switchback: telephony back on the master, nothing lost") as step:
            step.detail = self.switchback()

    # --- building -------------------------------------------------------------------

    def build(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="wazo-ha-demo-"))
        self.work.chmod(0o711)  # postgres must reach its cluster directories below
        self.say(f"workspace {self.work}")
        self.network = TestNetwork(self.subnet, self.tag)
        self.network.start()
        self.say(f"unreachable route {self.subnet} added in the root namespace; switch namespace {self.network.switch}")
        master_host = self.network.add_host("master")
        slave_host = self.network.add_host("slave")
        phone_host = self.network.add_host("phone")
        self.master = nodes.Node("master", master_host, self.work / "master", self.work / "master.yml")
        self.slave = nodes.Node("slave", slave_host, self.work / "slave", self.work / "slave.yml")
        for node in (self.master, self.slave):
            node.root.mkdir(mode=0o711)
        nodes.build_master(self.master, self.schema_files, self.work)
        users = self.master.sql("SELECT count(*) FROM userfeatures").strip()
        self.say(
            f"master {master_host.address} ({master_host.netns}): PostgreSQL with Wazo's schema, "
            f"{users} users; sipp answering SIP on :5060"
        )
        nodes.build_slave(self.slave, self.schema_files, self.work)
        self.say(
            f"slave  {slave_host.address} ({slave_host.netns}): PostgreSQL with Wazo's schema (fresh install), "
            "sshd on :22, monit supervising the SIP stand-in (stopped: standing by)"
        )
        self.phone = Phone(phone_host)
        wait_for(lambda: self.phone.options(self.master.address), 10, "the master answering SIP")
        self.say(f"phone  {phone_host.address}: SIP OPTIONS to the master answered; none from the slave")
        nodes.write_settings(self.master, nodes.master_settings(self.master, self.slave, self.work))
        nodes.write_settings(self.slave, nodes.slave_settings(self.slave, phone_host, self.stability))
        for node in (self.master, self.slave):
            node.engine().store.upgrade()
        self.detail(f"settings: {self.master.config_file}, {self.slave.config_file}")
        self.detail("provd is not part of the demo: plugins.device_provisioners is empty on both nodes")

    # --- enabling HA ----------------------------------------------------------------

    def enable_master(self) -> None:
        engine = self.master.engine()
        with self.master.host.entered():
            engine.update_ha({"node_type": "master", "remote_address": self.slave.address})
        event = engine.store.events(kind="edit", limit=1)[0]
        self.say(f"master: update_ha(node_type=master, remote_address={self.slave.address}) {event.outcome}")
        self.detail("steps: " + ", ".join(event.figures["steps"]))
        expiry = self.master.sql(
            "SELECT string_agg(o.key || '=' || o.value, ' ' ORDER BY o.key) FROM endpoint_sip_section_option o "
            "JOIN endpoint_sip_section s ON s.uuid = o.endpoint_sip_section_uuid JOIN tenant t "
            "ON t.global_sip_template_uuid = s.endpoint_sip_uuid WHERE s.type = 'aor' AND o.key LIKE '%expiration'"
        ).strip()
        self.detail(f"SIP registration expiry of the tenant's global template: {expiry}")
        password = engine.settings.path("replication_password")
        self.detail(f"replication password generated in {password} (mode {password.stat().st_mode & 0o777:o})")

    def enable_slave(self) -> None:
        master_engine, engine = self.master.engine(), self.slave.engine()
        # What `wazo-ha replication-password show | wazo-ha replication-password import` does.
        from wazo_ha_core import replication_password

        secret = replication_password.read(master_engine.settings.path("replication_password"))
        with self.slave.host.entered():
            engine.import_replication_password(secret)
            self.detail("replication password copied to the slave (show | import; never on a command line)")
            engine.update_ha({"node_type": "slave", "remote_address": self.master.address})
        event = engine.store.events(kind="edit", limit=1)[0]
        self.say(f"slave: update_ha(node_type=slave, remote_address={self.master.address}) {event.outcome}")
        self.detail("steps: " + ", ".join(event.figures["steps"]))
        hba = engine.settings.path("pg_hba").read_text().splitlines()
        rule = next((line for line in hba if "wazo_ha_replication" in line), "(none)")
        self.detail(f"pg_hba.conf: {' '.join(rule.split())}")
        listen = self.slave.sql("SHOW listen_addresses").strip()
        self.detail(f"PostgreSQL restarted by pg_ctl, listen_addresses = '{listen}'")

    # --- replication and sync ---------------------------------------------------------

    def sync_init(self) -> str:
        # What the operator does first: `ssh root@slave wazo-ha sync host-key show | wazo-ha sync host-key pin`,
        # so that init sends the slave's root password only to that host key.
        shown = "".join(entry["text"] for entry in self.slave.engine().show_host_keys())
        self.say(f"slave: sync host-key show: {' '.join(re.findall(r'SHA256:[A-Za-z0-9+/]{43}', shown))}")
        engine = self.master.engine()
        pinned = "; ".join(entry["message"] for entry in engine.pin_host_keys(shown))
        self.say(f"master: sync host-key pin: {pinned}")
        with self.master.host.entered():
            entries = engine.init_file_sync()
        message = "; ".join(entry["message"] for entry in entries)
        self.say(f"master: sync init: {message}")
        self.detail("the slave's root password came from plugin_config.rsync.password_file (0600)")
        return message

    def replicate(self) -> str:
        engine = self.master.engine()
        with self.master.host.entered():
            results = engine.replicate()
        figures = results[0].figures
        summary = (
            f"{figures.get('written_tables')} of {figures.get('tables')} tables written, {figures.get('rows')} rows, "
            f"{figures.get('bytes', 0) / 1024:.0f} KiB in {figures.get('duration', 0):.2f} s"
        )
        self.say(f"master: replication {results[0].outcome}: {summary}")
        users = self.slave.sql("SELECT count(*) FROM userfeatures").strip()
        self.detail(f"slave now has {users} users (logged in as wazo_ha_replication with scram-sha-256)")
        return summary

    def sync(self) -> str:
        engine = self.master.engine()
        with self.master.host.entered():
            report = engine.sync_files()
        message = "; ".join(result["message"] for result in report.results)
        self.say(f"master: file sync: {message}")
        return message

    def start_watch(self) -> None:
        log = open(self.work / "slave-watch.log", "ab")
        self.watch = self.slave.host.popen(self.slave.wazo_ha_command("watch"), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: "watch started" in self.watch_log(), 20, "wazo-ha watch started on the slave")
        self.say("slave: `wazo-ha watch` started (icmp + sip probes every 1 s, master down after 3 failed rounds)")

    def watch_standing_by(self) -> None:
        """A watch that just started stands by once the master was good for the stability window."""
        wait_for(lambda: self.watch_role() == "standby", self.stability + 30, "the watch in role standby")
        self.journaled = {kind: len(self.slave_events(kind)) for kind in ("failover", "failback")}
        self.say("slave: the watch sees the master up and stands by")

    def config_change(self) -> str:
        sql, number = nodes.new_user_sql()
        self.master.sql(sql)
        dialplan = self.master.root / nodes.SYNCED_DIRECTORY.lstrip("/") / "demo-change.conf"
        dialplan.write_text(f"[acme-internal]\nexten = {number},1,Dial(PJSIP/sip{number[1:]})\n")
        self.say(f"master: new user with extension {number} (database) and {dialplan.name} (files)")
        query = f"SELECT count(*) FROM extensions WHERE exten = '{number}'"
        before = self.slave.sql(query).strip()
        began = time.monotonic()
        engine = self.master.engine()
        with self.master.host.entered():
            engine.replicate()
            engine.sync_files()
        after = self.slave.sql(query).strip()
        arrived = self.slave.root / nodes.SYNCED_DIRECTORY.lstrip("/") / dialplan.name
        took = time.monotonic() - began
        self.say(
            f"slave: extension {number}: {before} row before, {after} after; {arrived.name} present: "
            f"{arrived.exists()} ({took:.1f} s for replication + sync)"
        )
        if after != "1" or not arrived.exists():
            raise StepFailed(f"the change did not reach the slave (rows {after}, file {arrived.exists()})")
        return f"extension {number} and {arrived.name} arrived"

    # --- follow mode ------------------------------------------------------------------------

    def follow(self) -> str:
        """``wazo-ha follow`` on the master: a database edit and a saved file reach the slave with no command."""
        log = open(self.work / "master-follow.log", "ab")
        self.follower = self.master.host.popen(
            self.master.wazo_ha_command("follow"), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        # Its first round replicates and syncs once (the slave may have missed changes): wait for its end.
        wait_for(lambda: "follow: files synced" in self.follow_log(), 30, "wazo-ha follow's first round")
        self.say("master: `wazo-ha follow` started (change signal read every 1 s, inotify on the synced directory)")
        user_id = self.master.sql("SELECT min(id) FROM userfeatures").strip()
        name = f"Follow{int(time.time()) % 100000}"
        query = f"SELECT firstname FROM userfeatures WHERE id = {user_id}"
        self.master.sql(f"UPDATE userfeatures SET firstname = '{name}' WHERE id = {user_id}")
        edited = time.monotonic()
        self.say(f"master: user {user_id} renamed to {name} (SQL, as wazo-confd would write it); no command run")
        wait_for(lambda: self.slave.sql(query).strip() == name, 30, "the edit visible on the slave")
        edit_took = time.monotonic() - edited
        self.say(
            f"slave: firstname of user {user_id} = {self.slave.sql(query).strip()}, {edit_took:.1f} s after the edit"
        )
        relative = nodes.SYNCED_DIRECTORY.lstrip("/") + "/follow-demo.conf"
        text = f"[acme-internal]\nexten = 8100,1,Playback(follow-{name})\n"
        (self.master.root / relative).write_text(text)
        saved = time.monotonic()
        self.say(f"master: {relative.rsplit('/', 1)[1]} saved in {nodes.SYNCED_DIRECTORY}")
        arrived = self.slave.root / relative
        wait_for(lambda: arrived.exists() and arrived.read_text() == text, 30, "the saved file on the slave")
        file_took = time.monotonic() - saved
        self.say(f"slave: {arrived.name} present with the same content, {file_took:.1f} s after the save")
        self.master.host.stop(self.follower)
        self.follower = None
        self.detail("follow stopped: the steps below replicate themselves (on a Wazo master it runs under systemd)")
        return f"edit on the slave after {edit_took:.1f} s, saved file after {file_took:.1f} s"

    def follow_log(self) -> str:
        text = ""
        for path in (self.work / "master" / "var/log/wazo-ha.log", self.work / "master-follow.log"):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    # --- failover and failback --------------------------------------------------------

    def failover(self) -> str:
        if self.slave_answers():
            raise StepFailed("the slave answers SIP before the failover")
        cut = time.monotonic()
        self.network.link_down(self.master.host)
        self.say("master's cable unplugged at the switch")
        answered = None
        while time.monotonic() - cut < FAILOVER_DEADLINE:
            if self.slave_answers():
                answered = time.monotonic() - cut
                break
        if answered is None:
            raise StepFailed(f"no SIP answer from the slave within {FAILOVER_DEADLINE:g} s")
        self.say(f"phone: first SIP answer from the slave {answered:.2f} s after the cut")
        event = wait_for(lambda: self.new_events("failover"), 15, "the failover journaled")[0]
        self.detail(f"slave journal: failover {event.outcome}: {event.message}")
        return f"first SIP answer from the slave after {answered:.2f} s"

    def failback(self) -> str:
        self.network.link_up(self.master.host)
        back = time.monotonic()
        self.say("master's cable plugged back")
        wait_for(lambda: self.new_events("failback"), self.stability + 30, "the failback journaled")
        wait_for(lambda: not self.slave_answers(), 15, "the slave standing by again")
        took = time.monotonic() - back
        wait_for(lambda: self.phone.options(self.master.address), 10, "the master answering SIP")
        event = self.new_events("failback")[0]
        self.say(f"slave gave back after {took:.1f} s (3 good rounds + {self.stability:g} s stability window)")
        self.detail(f"slave journal: failback {event.outcome}: {event.message}")
        self.detail("phone: SIP answered by the master again, none from the slave")
        return f"slave stood by again {took:.1f} s after the master came back"

    # --- planned switchover and switchback ------------------------------------------------

    def run_on_master(self, *args: str) -> subprocess.Popen:
        """``wazo-ha ARGS --json`` in the master's namespace, as an operator runs it; output to files."""
        name = args[0]
        out = open(self.work / f"{name}.json", "wb")
        err = open(self.work / f"{name}.log", "wb")
        try:
            return self.master.host.popen(self.master.wazo_ha_command(*args, "--json"), stdout=out, stderr=err)
        finally:
            out.close()
            err.close()

    def finished(self, process: subprocess.Popen, name: str) -> dict:
        if process.returncode != 0:
            said = (self.work / f"{name}.log").read_text(errors="replace").strip().splitlines()
            raise StepFailed(f"wazo-ha {name} exited {process.returncode}: {said[-1] if said else ''}")
        return json.loads((self.work / f"{name}.json").read_text())

    def switchover(self) -> str:
        if self.slave_answers() or not self.master_answers():
            raise StepFailed("the master must serve alone before a switchover")
        self.journaled = {kind: len(self.slave_events(kind)) for kind in ("failover", "failback")}
        phone = PhoneWatch(self.phone, self.master.address, self.slave.address)
        process = self.run_on_master("switchover")
        self.say("master: `wazo-ha switchover`: last replication and sync, then its telephony stops")
        if not phone.poll_until(lambda seen: bool(seen.slave) and process.poll() is not None, 60, raise_if_interrupted):
            raise StepFailed("the slave did not answer SIP, or the switchover did not end, within 60 s")
        figures = self.finished(process, "switchover")
        gap = phone.gap()
        self.say(
            f"phone: no server for {gap:.2f} s (last answer from the master to the first from the slave); "
            f"the master journaled at most {figures['no_server_seconds']:.2f} s"
        )
        self.detail(
            f"stop on the master {figures['stop_seconds']:.2f} s, the slave answered "
            f"{figures['takeover_seconds']:.2f} s later; replication {figures.get('replication')}, "
            f"sync {figures.get('sync')}"
        )
        event = wait_for(lambda: self.new_events("failover"), 15, "the slave's takeover journaled")[0]
        self.detail(f"slave journal: failover {event.outcome}: {event.message} (its normal watch, no second path)")
        if self.master_answers():
            raise StepFailed("the master still answers SIP after the switchover")
        # What the slave records while it serves: a voicemail message in the next free number, as app_voicemail
        # numbers it (after the master's msg0000 when the sync mirrored it, else msg0000, a clash), and a call
        # event row, both to be brought back by the switchback.
        self.slave_message = f"msg{len(nodes.voicemail_messages(self.slave)):04d}"
        nodes.write_voicemail(self.slave, "INBOX", int(self.slave_message[3:]), "a caller while the slave served")
        self.cel_uniqueid = f"{int(time.time())}.42"
        self.slave.sql(
            "INSERT INTO cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, "
            "exten, context, channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, "
            "userfield, peer) VALUES ('CHAN_START', now(), '', 'Demo caller', '1002', '1002', '', '', '1001', "
            f"'acme-internal', 'PJSIP/demo-00000042', '', '', 3, '', '', '{self.cel_uniqueid}', "
            f"'{self.cel_uniqueid}', '', '')"
        )
        self.say(
            f"slave (serving): a voicemail message in {nodes.MAILBOX} INBOX ({self.slave_message}) "
            f"and a CEL row (uniqueid {self.cel_uniqueid})"
        )
        return f"phones had no server for {gap:.2f} s (journaled <= {figures['no_server_seconds']:.2f} s)"

    def switchback(self) -> str:
        cel = f"SELECT count(*) FROM cel WHERE uniqueid = '{self.cel_uniqueid}'"
        before = (nodes.voicemail_messages(self.master), self.master.sql(cel).strip())
        phone = PhoneWatch(self.phone, self.master.address, self.slave.address)
        process = self.run_on_master("switchback")
        self.say("master: `wazo-ha switchback`: telephony starts here, the slave gives back through its failback")
        if not phone.poll_until(lambda seen: process.poll() is not None, 120, raise_if_interrupted):
            raise StepFailed("the switchback did not end within 120 s")
        figures = self.finished(process, "switchback")
        silence = phone.silence()
        self.say(
            f"slave gave back {figures['gave_back_after']:.1f} s after the master started "
            f"(3 good rounds + {self.stability:g} s stability window); the phone's longest wait for any answer: "
            f"{silence:.2f} s"
        )
        if self.slave_answers() or not self.master_answers():
            raise StepFailed("after the switchback the master must serve alone")
        copy_back = self.master.engine().store.events(kind="copy-back", limit=1)
        if copy_back:
            shown = {
                key: value
                for key, value in copy_back[0].figures.items()
                if type(value) is int and value and (key.startswith(("rows_", "messages")) or key == "files")
            }
            self.detail(f"master journal: copy-back {copy_back[0].outcome}: {shown}")
        after = (nodes.voicemail_messages(self.master), self.master.sql(cel).strip())
        self.say(
            f"master: {nodes.MAILBOX} INBOX {', '.join(before[0])} before, {', '.join(after[0])} after; "
            f"CEL rows with uniqueid {self.cel_uniqueid}: {before[1]} before, {after[1]} after"
        )
        renumbered = [name for name in after[0] if name not in before[0]]
        if len(after[0]) != len(before[0]) + 1 or after[1] != "1":
            raise StepFailed(f"copy-back incomplete ({figures.get('copy_back')}): messages {after[0]}, rows {after[1]}")
        self.detail(f"the slave's {self.slave_message} is the master's {renumbered[0]} (the master's msg0000 stays)")
        return f"nothing lost: voicemail ({renumbered[0]}) and CEL row on the master; longest silence {silence:.2f} s"

    # --- observing ----------------------------------------------------------------------

    def slave_answers(self) -> bool:
        return self.phone.options(self.slave.address, timeout=0.05)

    def master_answers(self) -> bool:
        return self.phone.options(self.master.address, timeout=0.05)

    def slave_events(self, kind: str) -> list:
        return self.slave.engine().store.events(kind=kind, limit=100)

    def watch_role(self) -> str | None:
        from wazo_ha_core.watcher import STATE_OWNER

        status = self.slave.engine().store.plugin_state(STATE_OWNER).get("status")
        return status["role"] if status else None

    def watch_log(self) -> str:
        """The slave's log file (``paths.log_file`` under its root) and the watch's own output."""
        text = ""
        for path in (self.work / "slave" / "var/log/wazo-ha.log", self.work / "slave-watch.log"):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def new_events(self, kind: str) -> list:
        """Journal events of ``kind`` on the slave since the watch started, newest first."""
        events = self.slave_events(kind)
        return events[: len(events) - self.journaled[kind]]

    def show_logs(self, lines: int = 8) -> None:
        """The end of each service's log, before the clean-up deletes them (after an error)."""
        logs = []
        for node in (self.master, self.slave):
            if node is not None and node.cluster is not None:
                logs.append((f"{node.name} PostgreSQL", node.cluster.server_log()))
        if self.work is not None:
            logs.append(("slave watch", self.watch_log()))
            logs.append(("master follow", self.follow_log()))
        for name, text in logs:
            tail = [line for line in text.splitlines() if line.strip()][-lines:]
            if tail:
                self.detail(f"--- {name} log (last lines) ---")
                for line in tail:
                    self.detail(line)

    # --- clean-up -------------------------------------------------------------------------

    def teardown(self) -> None:
        """Stop what was started (by PID), delete namespaces, the route and the workspace."""
        removed = []
        with _quietly():
            if self.watch is not None:
                self.slave.host.stop(self.watch)
                removed.append("watch")
        with _quietly():
            if self.follower is not None:
                self.master.host.stop(self.follower)
                removed.append("follow")
        for node in (self.slave, self.master):
            if node is None:
                continue
            for name in ("monit", "sshd"):
                service = node.extras.pop(name, None)
                if service is not None:
                    with _quietly():
                        service.stop()
                        removed.append(f"{node.name} {name}")
        if self.phone is not None:
            self.phone.close()
        for node in (self.slave, self.master):
            if node is not None and node.cluster is not None:
                with _quietly():
                    node.cluster.stop()
                    removed.append(f"{node.name} PostgreSQL")
        if self.network is not None:
            with _quietly():
                self.network.close()  # sipp and anything else started in a namespace, then the namespaces
                removed.append("namespaces, route")
        if self.work is not None:
            import shutil

            shutil.rmtree(self.work, ignore_errors=True)
            removed.append(f"workspace {self.work}")
        self.say(f"removed: {', '.join(removed) if removed else 'nothing was created'}")

    def print_summary(self) -> None:
        total = time.monotonic() - self.started
        width = max([len(step.name) for step in self.steps] + [4])
        self.out("")
        self.out(f"{'step':<{width}}  {'outcome':<11}  {'time':>7}  detail")
        self.out(f"{'-' * width}  {'-' * 11}  {'-' * 7}  {'-' * 6}")
        for step in self.steps:
            seconds = f"{step.seconds:6.1f}s" if step.seconds is not None else "      -"
            self.out(f"{step.name:<{width}}  {step.outcome:<11}  {seconds}  {step.detail}")
        self.out(f"{'total':<{width}}  {'':<11}  {total:6.1f}s")


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    """Clean-up goes on past a failing part; the failure is reported on stderr."""
    try:
        yield
    except Exception as exc:
        print(f"wazo-ha demo: clean-up: {exc}", file=sys.stderr)


def check_machine(install: bool, say: Callable[[str], None] = print) -> None:
    """Root, Linux network namespaces, and the Debian packages (installed when missing)."""
    from . import system

    if os.geteuid() != 0:
        raise StepFailed("the demo runs as root (network namespaces, PostgreSQL run as postgres, sshd)")
    missing = system.missing_packages()
    if missing:
        if not install:
            raise StepFailed(f"missing Debian packages: {' '.join(missing)} (run without --no-install to install)")
        system.install(missing, say)
    import shutil

    absent = [command for command in NEEDED_COMMANDS if shutil.which(command) is None]
    if absent:
        raise StepFailed(f"commands not found after installing the packages: {', '.join(absent)}")
