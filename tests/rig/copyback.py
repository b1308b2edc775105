"""The copy-back rig: the demo's two Wazo-like nodes and a phone (the roles of tests/rig/ha.py), each node with
a real PostgreSQL holding Wazo's schema, the slave with a real sshd + rsync; in 10.203.17.0/24, tag ``b``.

* master — PostgreSQL, the SIP stand-in (sipp), and the master's schedule played by
  :class:`CheckDriver`: ``wazo-ha copy-back --auto`` run in the master's namespace
  every second (cron runs it every ``schedules.master_interval`` minutes; the
  decision is the same, only the period is shorter);
* slave — PostgreSQL, sshd (the master's sync key, forced command with the
  copy-back ``--send`` words), monit supervising the stand-in, ``wazo-ha watch``;
* phone — sends OPTIONS, and is the slave's witness.

Voicemail is laid out as app_voicemail lays it (``<context>/<mailbox>/<folder>/msgNNNN.{txt,wav,gsm}``);
CEL and queue_log rows are inserted into the slave's ``asterisk`` database (Wazo's schema).
wazo-amid + Asterisk on the master (message-waiting refresh after a copy-back) are played by
:mod:`tests.rig.amid_standin` on the master's loopback, port 9491, when :meth:`CopyBackRig.start_amid` runs.
Used by ``tests/copyback_e2e``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from wazo_ha_core.copy_back.auto import load_state
from wazo_ha_core.copy_back.owed import State
from wazo_ha_core.settings import deep_merge
from wazo_ha_core.store import Store
from wazo_ha_rig import demo_nodes as nodes
from wazo_ha_rig.demo import Demo
from wazo_ha_rig.lifecycle import StartStop
from wazo_ha_rig.waiting import wait_for

SUBNET, TAG = "10.203.17.0/24", "b"
AMID_TOKEN_FILE = "/etc/wazo-ha/amid-token"  # node path on the master
REPO = Path(__file__).resolve().parents[2]
VOICEMAIL = "var/spool/asterisk/voicemail"
FOLDERS = ("INBOX", "Old", "Urgent")


def voicemail_txt(mailbox: str, origtime: int, msg_id: str, duration: int) -> str:
    """A msgNNNN.txt as app_voicemail writes it: fields in its order, ``msg_id`` since Asterisk 12."""
    return "\n".join(
        [
            ";",
            "; Message Information file",
            ";",
            "[message]",
            f"origmailbox={mailbox}",
            "context=default",
            "macrocontext=",
            f"exten={mailbox}",
            "rdnis=unknown",
            "priority=2",
            "callerchan=PJSIP/sip1002-00000001",
            f'callerid="Caller {origtime % 1000}" <1002>',
            "origdate=Thu Dec  3 10:00:00 AM UTC 2026",
            f"origtime={origtime}",
            "category=",
            f"msg_id={msg_id}",
            "flag=",
            f"duration={duration}",
            "",
        ]
    )


def leave_message(spool: Path, mailbox: str, folder: str, key: str, size: int = 40_000) -> str:
    """One message at the next free number of the folder, as app_voicemail: sounds first, the ``.txt`` last."""
    directory = spool / "default" / mailbox / folder
    directory.mkdir(parents=True, exist_ok=True)
    number = len(list(directory.glob("msg*.txt")))
    stem = directory / f"msg{number:04d}"
    seed = hashlib.sha256(key.encode()).digest()
    stem.with_suffix(".wav").write_bytes(b"RIFF" + seed * (size // len(seed)))
    stem.with_suffix(".gsm").write_bytes(b"GSM" + seed * (size // (4 * len(seed))))
    origtime = 1_764_756_000 + int.from_bytes(seed[:3], "big")
    stem.with_suffix(".txt").write_text(voicemail_txt(mailbox, origtime, f"{origtime}-{key}", 5 + seed[3] % 60))
    return key


def delete_and_renumber(spool: Path, box: str, folder: str, number: int) -> None:
    """The owner deletes a message; app_voicemail closes the gap (each later message one number down)."""
    directory = spool / box / folder
    for path in directory.glob(f"msg{number:04d}.*"):
        path.unlink()
    later = sorted({int(p.stem[3:]) for p in directory.glob("msg*.txt") if int(p.stem[3:]) > number})
    for old in later:
        for path in directory.glob(f"msg{old:04d}.*"):
            path.rename(directory / f"msg{old - 1:04d}{path.suffix}")


def messages(spool: Path) -> dict[str, dict[str, str]]:
    """``msg_id`` → {folder-relative message path, and the digest of each of its files by extension}."""
    found: dict[str, dict[str, str]] = {}
    for txt in sorted(spool.glob("default/*/*/msg*.txt")):
        msg_id = next(line.split("=", 1)[1] for line in txt.read_text().splitlines() if line.startswith("msg_id="))
        files = {
            path.suffix: hashlib.sha256(path.read_bytes()).hexdigest() for path in txt.parent.glob(txt.stem + ".*")
        }
        entry = {"where": str(txt.relative_to(spool).with_suffix("")), **files}
        assert msg_id not in found, f"message {msg_id} twice: {found[msg_id]['where']} and {entry['where']}"
        found[msg_id] = entry
    return found


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: digest and mtime (ns) — what "untouched" compares."""
    return {
        str(path.relative_to(root)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def history_rows_sql(tag: str, cel: int, queue_log: int) -> str:
    """CEL rows of ``cel // 2`` calls (two events each, tied by uniqueid/linkedid) and queue_log rows."""
    return f"""
INSERT INTO cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context,
                 channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer)
SELECT CASE WHEN i % 2 = 0 THEN 'CHAN_START' ELSE 'HANGUP' END, now() - i * interval '1 second', '',
       'Caller ' || i, (10000 + i % 500)::text, '', '', '', 's', 'acme-internal', 'PJSIP/sip' || i || '-0000',
       'Dial', 'PJSIP/x', 3, '', '', '{tag}.' || (i / 2), '{tag}.' || (i / 2), '', ''
FROM generate_series(0, {cel - 1}) AS i;
INSERT INTO queue_log ("time", callid, queuename, agent, event, data1, data2, data3)
SELECT now() - i * interval '1 second', '{tag}.' || i, 'support', 'Agent/' || (i % 50), 'CONNECT', '1', '2', '3'
FROM generate_series(0, {queue_log - 1}) AS i;
"""


ROWS_QUERY = """
SELECT 'cel', eventtype, cid_name, uniqueid, linkedid, channame FROM cel WHERE uniqueid LIKE '{tag}.%'
UNION ALL
SELECT 'queue_log', event, agent, callid, queuename, data1 FROM queue_log WHERE callid LIKE '{tag}.%'
ORDER BY 1, 4, 2, 3
"""


class CheckDriver:
    """The master's schedule: ``wazo-ha copy-back --auto`` in the master's namespace, one after the other."""

    def __init__(self, rig: CopyBackRig, period: float = 1.0):
        self.rig, self.period = rig, period
        self.current: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="copy-back-checks", daemon=True)
        self.log = rig.work / "master-checks.log"
        self.exit_codes: list[int] = []  # one per check run, in order

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=120)

    def _loop(self) -> None:
        master = self.rig.master
        while not self.stopping.is_set():
            with open(self.log, "ab") as log:
                self.current = master.host.popen(
                    master.wazo_ha_command("copy-back", "--auto", "--json"), stdout=log, stderr=log
                )
            self.exit_codes.append(self.current.wait())
            self.stopping.wait(self.period)

    def kill_running_attempt(self) -> int:
        """SIGKILL the check process while it runs a copy-back attempt; returns the PID killed."""
        process = self.current
        assert process is not None and process.poll() is None, "no check process running"
        os.kill(process.pid, signal.SIGKILL)
        return process.pid


class CopyBackRig(StartStop, Demo):  # start()/close() below; StartStop cleans up a half start
    def __init__(self, schema_files, stability: float = 3.0, subnet: str = SUBNET, tag: str = TAG):
        super().__init__(
            schema_files, stability=stability, install=False, out=lambda text: None, subnet=subnet, tag=tag
        )
        self.driver: CheckDriver | None = None
        self.amid: subprocess.Popen | None = None

    def start(self) -> None:
        self.build()
        for node in (self.master, self.slave):
            (node.root / VOICEMAIL).mkdir(parents=True, exist_ok=True)  # the demo seeds the master's
        self._master_settings()
        self.enable_master()
        self.enable_slave()
        self.sync_init()
        self.replicate()
        self.sync()
        self.start_watch()
        self.watch_standing_by()
        self.master_store = Store(f"sqlite:///{self.master.root}/var/lib/wazo-ha/state.db")
        self.start_checks()

    def start_checks(self) -> None:
        """The master's schedule, played by :class:`CheckDriver`."""
        self.driver = CheckDriver(self)
        self.driver.start()

    def close(self) -> None:
        if self.driver is not None:
            self.driver.stop()
        self.stop_amid()
        if getattr(self, "master_store", None) is not None:
            self.master_store.close()
        self.teardown()

    def _master_settings(self) -> None:
        """The master observes the slave (icmp + sip, as by default) and retries quickly; short network limits."""
        tree = yaml.safe_load(self.master.config_file.read_text())
        tree = deep_merge(
            tree,
            {
                "plugins": {"health_probes": ["icmp", "sip"]},
                "copy_back": {"retry_min": 2, "retry_max": 4},
                "timeouts": {"connect": 3},
                "plugin_config": {
                    "rsync": {"io_timeout": 5},
                    "pg_dump": {"timeout": 30},
                    "wazo_services": {
                        "amid_url": "http://127.0.0.1:9491/1.0",
                        "amid_token_file": AMID_TOKEN_FILE,
                        "amid_timeout": 2,
                    },
                },
            },
        )
        nodes.write_settings(self.master, tree)

    def print_log_tails(self, names=("master-follow.log", "master-checks.log", "slave-watch.log")) -> None:
        """The last lines of the rig's logs that exist, for a failed test's report."""
        for name in names:
            path = self.work / name
            if path.exists():
                print(f"\n--- {name} (tail) ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]))

    # --- wazo-amid + Asterisk on the master (the stand-in) ----------------------------------------

    @property
    def amid_log(self) -> Path:
        return self.work / "amid-requests.jsonl"

    def start_amid(self) -> None:
        """The stand-in on the master's loopback:9491 (where wazo-amid listens), with a fresh token in the file."""
        token_file = self.master.root / AMID_TOKEN_FILE.lstrip("/")
        token_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_hex(16) + "\n")
        ready = self.work / "amid.ready"
        ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tests.rig.amid_standin", "--token-file", str(token_file)]
        command += ["--log", str(self.amid_log), "--ready", str(ready)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.amid = self.master.host.popen(command, cwd=REPO, env=env)
        wait_for(ready.exists, 20, "the wazo-amid stand-in listening on the master")

    def stop_amid(self) -> None:
        """wazo-amid down (an outage): connections to 127.0.0.1:9491 on the master are refused."""
        if self.amid is not None:
            self.master.host.stop(self.amid)
            self.amid = None

    # --- the slave's sender without the capabilities that bypass permissions ------------------------

    @contextlib.contextmanager
    def sender_without_dac_capabilities(self):
        """The slave's forced command run by capsh with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped.

        sshd runs the key's forced command as root, whose CAP_DAC_OVERRIDE reads even a mode-000
        directory; without it the kernel really refuses (EACCES), as for a sender not running as
        root. The forced command names the receiver file; it is swapped for a wrapper that execs
        the real one under capsh, and put back on leaving.
        """
        rsync = yaml.safe_load(self.master.config_file.read_text())["plugin_config"]["rsync"]
        keys = Path(rsync["authorized_keys_file"])
        found = re.search(r'command="\S+ -I -S (\S+) ', keys.read_text())
        assert found, "no forced command in the slave's authorized_keys"
        receiver = Path(found.group(1))
        real = receiver.with_name(receiver.name + ".real")
        shutil.copy2(receiver, real)
        capsh = shutil.which("capsh")
        assert capsh, "capsh (libcap2-bin) is missing"
        # bash -c 'exec "$0" -I -S "$@"' PYTHON REAL ARGS: the same interpreter, on the real file, same arguments.
        wrapper = (
            "import os, sys\n"
            f"os.execv({capsh!r}, [{capsh!r}, '--drop=cap_dac_override,cap_dac_read_search', '--', '-c', "
            f'\'exec "$0" -I -S "$@"\', sys.executable, {str(real)!r}, *sys.argv[1:]])\n'
        )
        receiver.write_text(wrapper)
        try:
            yield
        finally:
            os.replace(real, receiver)

    # --- what the nodes hold ----------------------------------------------------------------

    def spool(self, node) -> Path:
        return node.root / VOICEMAIL

    def rows(self, node, tag: str) -> list[str]:
        return node.sql(ROWS_QUERY.format(tag=tag)).splitlines()

    def owed(self) -> State:
        return load_state(self.master_store)

    # --- failover and failback ---------------------------------------------------------------

    def fail_master(self) -> None:
        assert not self.slave_answers(), "the slave serves before the failover"
        self.network.link_down(self.master.host)
        wait_for(self.slave_answers, 20, "the slave answering SIP (failover)")

    def bring_master_back(self) -> None:
        self.network.link_up(self.master.host)
        wait_for(lambda: not self.slave_answers(), self.stability + 40, "the slave giving back (failback)")
        wait_for(lambda: self.phone.options(self.master.address), 10, "the master answering SIP")
