"""The Debian package, installed with ``apt-get install ./wazo-ha_*.deb`` into a fresh Debian 12 chroot."""

from __future__ import annotations

import re

import pytest

from wazo_ha_core import __version__
from wazo_ha_rig.chroot_node import ChrootNode

LEGACY = (
    "wazo-sync",
    "xivo-sync",
    "xivo-master-slave-db-replication",
    "xivo-check-master-status",
    "xivo-manage-slave-services",
)
UNITS = (
    "wazo-ha-watch.service",
    "wazo-ha-replicate.service",
    "wazo-ha-replicate.timer",
    "wazo-ha-sync.service",
    "wazo-ha-sync.timer",
    "wazo-ha-copy-back.service",
    "wazo-ha-copy-back.timer",
)


def test_the_package_is_named_after_the_version(deb):
    assert deb.name == f"wazo-ha_{__version__}_amd64.deb"


def test_wazo_ha_is_on_the_path(installed_node):
    result = installed_node.run(["wazo-ha", "--help"])
    assert installed_node.run(["readlink", "-f", "/usr/bin/wazo-ha"]).stdout.strip().startswith("/opt/venvs/wazo-ha/")
    assert result.stdout.startswith("usage: wazo-ha")


@pytest.mark.parametrize("name", LEGACY)
def test_the_legacy_names_run(installed_node, name):
    result = installed_node.run([f"/usr/bin/{name}", "--help"])
    assert result.stdout.startswith("usage:"), result.stdout


def test_the_units_are_installed_but_nothing_is_enabled(installed_node):
    for unit in UNITS:
        assert installed_node.path(f"/lib/systemd/system/{unit}").is_file(), unit
    # Enabled = a link in a .wants directory (systemd's view) or deb-systemd-helper's record of one.
    # (Its *.dsh-also files only list what enabling would create.)
    links = [
        str(path.relative_to(installed_node.root))
        for directory in ("/etc/systemd/system", "/var/lib/systemd/deb-systemd-helper-enabled")
        for path in installed_node.path(directory).rglob("*.wants/wazo-ha*")
    ]
    assert links == []
    for unit in UNITS:
        helper = installed_node.run(["deb-systemd-helper", "is-enabled", unit], check=False)
        assert helper.returncode != 0, f"{unit} is enabled"


def test_no_cron_entry_is_active(installed_node):
    assert sorted(path.name for path in installed_node.path("/etc/cron.d").glob("*ha*")) == []
    crontabs = installed_node.path("/var/spool/cron/crontabs")
    assert not crontabs.exists() or list(crontabs.iterdir()) == []
    assert installed_node.path("/usr/share/doc/wazo-ha/examples/cron.d/xivo-ha-master").is_file()


def test_the_logrotate_file_is_valid(installed_node):
    assert installed_node.path("/etc/logrotate.d/wazo-ha").is_file()
    result = installed_node.run(["logrotate", "-d", "/etc/logrotate.d/wazo-ha"], check=False)
    assert result.returncode == 0, result.stderr
    assert "/var/log/wazo-ha.log" in result.stderr
    assert not re.search(r"(?im)^error", result.stderr), result.stderr


def test_store_and_status_work_with_the_defaults(installed_node):
    installed_node.run(["wazo-ha", "db", "upgrade"])
    status = installed_node.run(["wazo-ha", "status"])
    assert "disabled" in status.stdout.lower(), status.stdout
    assert installed_node.path("/var/lib/wazo-ha/state.db").is_file()


# What apt and dpkg themselves keep (their logs, caches, status), and stevedore's per-user entry-point
# cache in root's home (shared by every stevedore program, Wazo's too; policy: no package removes what
# is in a home directory): not files of ours.
NOT_OURS = re.compile(
    r"/(var/lib/(dpkg|apt|systemd/deb-systemd-helper-(enabled|masked))|var/cache/(apt|debconf|ldconfig)"
    r"|root/\.cache|root/\.cache/python-entrypoints(/[0-9a-f]+)?"
    r"|var/log/(apt|dpkg\.log|alternatives\.log)|root/wazo-ha_[^/]*\.deb|tmp|run|proc|sys|dev)(/.*)?"
)


def _files(node: ChrootNode) -> set[str]:
    listed = node.run(["find", "/", "-xdev", "-print"], network=False).stdout.splitlines()
    return {path for path in listed if not NOT_OURS.fullmatch(path)}


def test_purge_leaves_nothing_of_ours(deb, image, network):
    with ChrootNode.unpacked(image, "purged", host=network.add_host(f"p{len(network.hosts)}")) as node:
        before = _files(node)
        node.install_deb(deb)
        node.run(["wazo-ha", "db", "upgrade"])
        node.run(["wazo-ha", "status"])
        node.run(["wazo-ha", "config", "show"], check=False)
        node.run(["apt-get", "purge", "-y", "-q", "wazo-ha"], network=False)
        node.run(["apt-get", "autoremove", "--purge", "-y", "-q"], network=False)
        left = sorted(_files(node) - before)
        assert left == [], left
