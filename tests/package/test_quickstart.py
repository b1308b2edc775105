"""docs/quickstart.rst, walked literally on two fresh Debian 12 nodes with the .deb.

The commands are read from the page (``quickstart.py``) and run in order, each at a terminal of
its node (a pty answering the ssh and password prompts as the operator would), with only the
page's addresses replaced. Each must exit 0; after the page's failover and failback steps the
slave's ``wazo-ha status`` must say what the page says, within a deadline.

The nodes are chroots (``wazo_ha_rig.chroot_node``) in namespaces of 10.203.13.0/24 with real
PostgreSQL 15 (Wazo's schema fixture loaded), real sshd and rsync, and the package installed by
the page's own ``apt install``. STAND-INS, for what cannot run in a chroot (each named here):

* Asterisk → sipp answering OPTIONS on the master's address (``wazo_ha_rig.sip``);
* provd → ``tests/rig/provd_standin.py`` on the master's 127.0.0.1:8666, requiring a token;
* systemd, ``wazo-service``, ``wazo-auth-cli``, ``asterisk -rx``, ``wazo-confgen``,
  ``wazo-agentd-cli`` → the scripts of ``wazo_ha_rig.chroot_standins`` in ``/usr/local/sbin``
  (the slave's watch runs as the "unit" the systemctl stand-in starts);
* what the Wazo installation itself does to PostgreSQL: database ``asterisk`` owned by role
  ``asterisk`` with the schema fixture, and root allowed to connect as ``postgres`` over the
  Unix socket (a ``pg_ident.conf`` map here) — wazo-ha's ``config_db.url`` default needs it.
"""

from __future__ import annotations

import re
import secrets
import shutil

import pytest

from tests.rig.provd_standin import ProvdStandIn
from wazo_ha_rig import chroot_standins, schema_fixture, wazo_data
from wazo_ha_rig.chroot_node import ChrootNode
from wazo_ha_rig.sip import start_responder
from wazo_ha_rig.waiting import wait_for

from . import quickstart
from .operator import run_at_terminal

ROOT_PASSWORD = "qs-" + secrets.token_hex(8)
SLAVE_UUID = "9b0c1b64-0000-4000-8000-00000000beef"
#: What the page says each check shows after its action; the command is re-run until it does (deadline).
AFTER_ACTION = {
    "unplug-master": (re.compile(r"(?s)master\s+DOWN.*services\s+\S+: active"), 60),
    "plug-master": (re.compile(r"(?s)master\s+UP.*services\s+\S+: standby"), 120),
}
PROMPTS = {
    r"Are you sure you want to continue connecting \(yes/no(/\[fingerprint\])?\)\?": "yes",
    r"password(: | of root@[^ ]+ \(used once, to install the sync key\): )": ROOT_PASSWORD,
}


def _wazo_postgresql(node: ChrootNode, extra_sql: str) -> None:
    """PostgreSQL as a Wazo node has it (STAND-IN for the Wazo installation's own set-up)."""
    node.ensure_cluster()
    hba = node.path("/etc/postgresql/15/main/pg_hba.conf")
    hba.write_text(
        hba.read_text().replace(
            "local   all             postgres                                peer",
            "local   all             postgres                                peer map=wazo",
        )
    )
    node.path("/etc/postgresql/15/main/pg_ident.conf").write_text("wazo root postgres\nwazo postgres postgres\n")
    node.start_postgresql()
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres"]
    node.run([*psql, "-c", "CREATE ROLE asterisk NOLOGIN"])
    node.run([*psql, "-c", "CREATE DATABASE asterisk OWNER asterisk ENCODING 'UTF8' TEMPLATE template0"])
    schema, data = schema_fixture.find()
    for text in (schema.read_text(), data.read_text(), extra_sql):
        node.run([*psql, "-d", "asterisk", "-c", "SET ROLE asterisk", "-f", "-"], input=text, timeout=300)


@pytest.fixture
def pair(deb, image, network, tmp_path):
    master_host, slave_host = network.add_host("master"), network.add_host("slave")
    witness = network.add_host("witness")
    provd = None
    with (
        ChrootNode.unpacked(image, "master", host=master_host) as master,
        ChrootNode.unpacked(image, "slave", host=slave_host) as slave,
    ):
        token = secrets.token_hex(16)
        chroot_standins.install(master.root, auth_token=token)
        chroot_standins.install(slave.root)
        for node in (master, slave):
            shutil.copyfile(deb, node.path(f"/root/{deb.name}"))  # "the package is on both nodes"
            node.start_sshd()
        slave.run(["chpasswd"], input=f"root:{ROOT_PASSWORD}\n")
        _wazo_postgresql(master, wazo_data.tenant_sql())
        _wazo_postgresql(slave, f"UPDATE infos SET uuid = '{SLAVE_UUID}';")
        start_responder(master_host, tmp_path / "sipp")
        with master_host.entered():
            provd = ProvdStandIn(token=token, port=8666).start()
        provd.add_config({"id": "registrar-1", "X_type": "registrar", "registrar_main": master.address})
        try:
            yield master, slave, witness, provd
        finally:
            provd.stop()
            master_host.stop_all()


def test_the_quickstart_as_written(pair, network):
    master, slave, witness, provd = pair
    nodes = {"master": master, "slave": slave}
    addresses = {"10.0.0.1": master.address, "10.0.0.2": slave.address, "10.0.0.254": witness.address}
    expectation = None
    for step in quickstart.steps():
        if isinstance(step, quickstart.Action):
            if step.name == "unplug-master":
                network.link_down(master.host)
            elif step.name == "plug-master":
                network.link_up(master.host)
            else:
                pytest.fail(f"quickstart.rst line {step.line}: unknown action {step.name!r}")
            expectation = AFTER_ACTION[step.name]
            continue
        text = quickstart.substitute(step.text, addresses)
        node = nodes[step.node]
        where = f"quickstart.rst line {step.line} ({step.node}# {text.splitlines()[0]})"
        if expectation:
            pattern, timeout = expectation
            expectation = None

            last: list[str] = []

            def shows(text=text, node=node, pattern=pattern, last=last):
                outcome = run_at_terminal(node, text, PROMPTS)
                last[:] = [outcome.output]
                return outcome.returncode == 0 and pattern.search(outcome.output) and outcome

            try:
                wait_for(shows, timeout, f"{where} showing {pattern.pattern}", interval=1)
            except AssertionError as exc:
                log = node.path("/var/log/wazo-ha.log")
                tail = log.read_text()[-3000:] if log.exists() else "(no log)"
                raise AssertionError(f"{exc}\nlast output:\n{''.join(last)}\nwazo-ha.log:\n{tail}") from None
            continue
        outcome = run_at_terminal(node, text, PROMPTS)
        assert outcome.returncode == 0, f"{where} exited {outcome.returncode}:\n{outcome.output}"
    # What the page promised along the way, read from the services themselves.
    assert any(r.method == "PUT" for r in provd.requests), "enabling the master did not reach provd"
    assert provd.configs["registrar-1"].get("registrar_backup") == slave.address
