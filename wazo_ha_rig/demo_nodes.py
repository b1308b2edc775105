"""The two Wazo-like nodes of ``wazo-ha demo``: each a network namespace with its own
PostgreSQL (Wazo's real schema), a sandbox ``root`` and a settings file.

* master — its cluster holds a small site (a tenant, users, lines, extensions);
  monit supervises the SIP stand-in (sipp answering on 5060, standing in for
  Asterisk), which ``wazo_services`` stops and starts for a planned switchover;
  its voicemail spool holds one message;
* slave — a fresh Wazo (schema and default data only, its own uuid), an sshd
  for the file sync, and monit supervising the same SIP stand-in, stopped
  while the slave stands by.

Both clusters live under their node's ``root``, so the settings paths the
edit steps use (``paths.pg_hba``, ``paths.pg_listen_conf``) are the real files
of the real cluster; the slave's reload/restart commands are ``pg_ctl``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import wazo_data
from .monit import SERVICE, Monit
from .netns import Host
from .postgres import PG_USER, PgCluster
from .sshd import ROOT_PASSWORD, Sshd
from .standby import standby_settings

DATABASE = "asterisk"
OWNER = "asterisk"  # owns the configuration tables, as on a real Wazo
CLUSTER_DIR = "/var/lib/postgresql/demo"  # node path (under the node's root)
SLAVE_UUID = "5a5a5a5a-0000-4000-8000-0000000000de"
SITE_USERS = 20
SSH_PASSWORD_FILE = "secrets/slave-root-ssh-password"  # under the demo directory, 0600
SYNCED_DIRECTORY = "/etc/asterisk/extensions_extra.d"
VOICEMAIL_DIR = "/var/spool/asterisk/voicemail"  # copy_back.voicemail_dir's default
MAILBOX = "acme/1001"  # context/mailbox, as app_voicemail lays them out


@dataclass
class Node:
    name: str
    host: Host
    root: Path
    config_file: Path
    cluster: PgCluster | None = None
    extras: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.host.address

    def sql(self, text: str) -> str:
        return self.cluster.psql(DATABASE, text)

    def engine(self):
        from wazo_ha_core import HAEngine

        return HAEngine.from_config(str(self.config_file))

    def wazo_ha_command(self, *args: str) -> list[str]:
        """``wazo-ha`` with this node's settings: the script installed beside this Python, else on PATH."""
        beside = Path(sys.executable).parent / "wazo-ha"
        program = str(beside) if beside.exists() else shutil.which("wazo-ha") or "wazo-ha"
        return [program, "--config", str(self.config_file), *args]


def start_cluster(node: Node, schema_files: tuple[Path, Path], extra_sql: str, settings: dict | None = None) -> None:
    """The node's PostgreSQL in its namespace, with Wazo's schema owned by ``asterisk``."""
    directory = node.root / CLUSTER_DIR.lstrip("/")
    directory.parent.mkdir(parents=True, exist_ok=True)
    node.cluster = PgCluster.start(
        host=node.address, netns=node.host.netns, directory=directory, settings=settings or {}
    )
    cluster = node.cluster
    cluster.psql(
        "postgres",
        f"CREATE ROLE {OWNER} NOLOGIN; CREATE DATABASE {DATABASE} OWNER {OWNER} ENCODING 'UTF8' TEMPLATE template0;",
    )
    env = {**os.environ, "PGOPTIONS": f"-c role={OWNER}"}  # the tables belong to asterisk, not postgres
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(cluster.socket_dir), "-p", str(cluster.port)]
    for path in schema_files:
        command = [*psql, "-U", PG_USER, "-d", DATABASE, "-f", str(path)]
        subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=300)
    if extra_sql:
        cluster.psql(DATABASE, f"SET ROLE {OWNER};\n{extra_sql}")


def site_sql() -> str:
    """The master's site: a tenant with its global SIP template and ``SITE_USERS`` users."""
    return wazo_data.tenant_sql() + wazo_data.users_sql(SITE_USERS)


def new_user_sql() -> tuple[str, str]:
    """The demo's configuration change on the master: one more user, line and extension."""
    number = SITE_USERS + 1
    return wazo_data.users_sql(1, first=number), str(10000 + number)


def build_master(node: Node, schema_files: tuple[Path, Path], work: Path) -> None:
    start_cluster(node, schema_files, site_sql())
    monit = node.extras["monit"] = Monit.start(work / "master-monit", node.address, 5060, host=node.host)
    if not monit.standin_running():  # monit may have started it with the daemon already
        monit.cli("start", SERVICE)
    write_voicemail(node, "INBOX", 0, "a message left on the master before the demo")
    synced = node.root / SYNCED_DIRECTORY.lstrip("/")
    synced.mkdir(parents=True)
    (synced / "site.conf").write_text("[acme-internal]\nexten = 8000,1,Playback(demo-congrats)\n")


def write_voicemail(node: Node, folder: str, number: int, caller: str) -> Path:
    """One message as app_voicemail stores it: ``msgNNNN.wav`` and its ``msgNNNN.txt`` metadata, the .txt last."""
    directory = node.root / VOICEMAIL_DIR.lstrip("/") / MAILBOX / folder
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"msg{number:04d}"
    stem.with_suffix(".wav").write_bytes(b"RIFF" + caller.encode() + bytes(64))
    stamp = int(time.time())
    stem.with_suffix(".txt").write_text(
        ";\n; Message Information file\n;\n[message]\n"
        f"origmailbox={MAILBOX.split('/')[1]}\ncontext=acme-internal\nmacrocontext=\nexten=1001\n"
        f'rdnis=unknown\npriority=2\ncallerchan=PJSIP/demo-00000001\ncallerid="{caller}" <1002>\n'
        f"origdate={time.strftime('%a %b %d %I:%M:%S %p UTC %Y', time.gmtime(stamp))}\norigtime={stamp}\n"
        f"category=\nmsg_id={stamp}-{node.name}-{number:08d}\nflag=\nduration=4\n"
    )
    return stem.with_suffix(".txt")


def voicemail_messages(node: Node, folder: str = "INBOX") -> list[str]:
    """The message numbers of the demo's mailbox folder (``msg0000``, …), from their ``.txt`` files."""
    directory = node.root / VOICEMAIL_DIR.lstrip("/") / MAILBOX / folder
    return sorted(path.stem for path in directory.glob("msg[0-9][0-9][0-9][0-9].txt")) if directory.is_dir() else []


def build_slave(node: Node, schema_files: tuple[Path, Path], work: Path) -> None:
    listen_conf = node.root / CLUSTER_DIR.lstrip("/") / "conf.d" / "wazo-ha.conf"
    # The include file the slave-database step writes listen_addresses to, read last.
    start_cluster(
        node,
        schema_files,
        f"UPDATE infos SET uuid = '{SLAVE_UUID}';",
        settings={"include_if_exists": f"'{listen_conf}'"},
    )
    # Its host key in the node's /etc/ssh, where `wazo-ha sync host-key show` looks by default.
    node.extras["sshd"] = Sshd.start(host=node.address, netns=node.host.netns, directory=node.root / "etc" / "ssh")
    node.extras["monit"] = Monit.start(work / "slave-monit", node.address, 5060, host=node.host)
    password_file = work / SSH_PASSWORD_FILE
    password_file.parent.mkdir(mode=0o700, exist_ok=True)
    descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(ROOT_PASSWORD + "\n")


def common_settings(node: Node, peer_roles: dict) -> dict:
    return {
        "root": str(node.root),
        "local_addresses": [node.address],
        "notifications": {"mail_to": None},  # no mail to this machine's root from a demo
        "config_db": {"url": node.cluster.socket_url(DATABASE)},
        "file_sync": {"directories": [SYNCED_DIRECTORY], "tenant_sounds_dir": None},
        # The demo drives replication, sync and the watch itself: no cron files or units.
        "schedules": {"enabled": False},
        **peer_roles,
    }


def master_settings(master: Node, slave: Node, work: Path) -> dict:
    sshd: Sshd = slave.extras["sshd"]
    # The master's telephony is its monit's stand-in, switched as the slave's is (for `wazo-ha switchover`).
    services = standby_settings(master.extras["monit"], 0, [])["plugin_config"]["wazo_services"]
    return common_settings(
        master,
        {
            "plugins": {
                "replication": ["pg_dump"],
                "file_sync": ["rsync"],
                "health_probes": ["sip"],  # switchover sees the slave answer through it
                "device_provisioners": [],  # provd is not part of the demo
                "service_managers": ["wazo_services"],
            },
            "switchover": {"timeout": 20, "switchback_timeout": 90},
            "plugin_config": {
                "wazo_services": services,
                "pg_dump": {
                    "master_host": str(master.cluster.socket_dir),
                    "master_port": master.cluster.port,
                    "slave_port": slave.cluster.port,
                    # The role the slave's "replication role" step created, with the shared password.
                    "slave_user": "wazo_ha_replication",
                    "slave_password_file": "/etc/wazo-ha/replication-password",
                },
                "rsync": {
                    "port": sshd.port,
                    "authorized_keys_file": str(sshd.authorized_keys),
                    "receiver_path": str(work / "slave-bin" / "rsync-receiver"),
                    "remote_root": str(slave.root),
                    # The slave's root password for `sync init`: from a 0600 file, never argv.
                    "password_file": str(work / SSH_PASSWORD_FILE),
                },
            },
        },
    )


def slave_settings(slave: Node, phone: Host, stability: float) -> dict:
    monit: Monit = slave.extras["monit"]
    cluster = slave.cluster
    cluster_dir = CLUSTER_DIR.rstrip("/")
    standby = standby_settings(monit, stability, [phone.address])
    # As on a real slave, rsync is enabled: `wazo-ha sync host-key show` needs it.
    standby["plugins"] = {**standby["plugins"], "file_sync": ["rsync"]}
    return common_settings(
        slave,
        {
            "paths": {
                "pg_hba": f"{cluster_dir}/data/pg_hba.conf",
                "pg_listen_conf": f"{cluster_dir}/conf.d/wazo-ha.conf",
            },
            "slave_db": {
                "reload_command": cluster.pg_ctl_command("reload"),
                "restart_command": cluster.pg_ctl_command("restart"),
            },
            **standby,
        },
    )


def write_settings(node: Node, tree: dict) -> None:
    node.config_file.parent.mkdir(parents=True, exist_ok=True)
    node.config_file.write_text(yaml.safe_dump(tree, sort_keys=False))
    node.config_file.chmod(0o600)
