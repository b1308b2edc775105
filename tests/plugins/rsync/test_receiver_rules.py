"""The forced command's rules, checked without ssh: what it accepts from rsync's client and what it refuses.

The accepted request is the one the real rsync client builds: it is captured
by giving rsync a "remote shell" that only writes down the command it was
asked to run on the slave.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wazo_ha_plugins.rsync import receiver, transfer

ROOT = "/var/lib/wazo-ha/slave"


def client_request(tmp_path: Path, **options) -> str:
    """The ``rsync --server …`` command line our rsync client sends for a sync (SSH_ORIGINAL_COMMAND)."""
    shell = tmp_path / "capture-shell"
    captured = tmp_path / "captured"
    # rsync runs it as: <shell> -l root slave rsync --server …
    shell.write_text(f'#!/bin/sh\nshift 3\nprintf "%s " "$@" > {captured}\nexit 1\n')
    shell.chmod(0o700)
    source = tmp_path / "source" / "var/lib/asterisk/moh"
    source.mkdir(parents=True)
    command = transfer.rsync_command(
        [str(shell)],
        [f"{tmp_path}/source/./var/lib/asterisk/moh"],
        f"root@slave:{ROOT}",
        io_timeout=options.get("io_timeout", 30),
        bandwidth_limit=options.get("bandwidth_limit"),
        progress=False,
    )
    subprocess.run(command, capture_output=True, check=False, env={"PATH": os.environ["PATH"]})
    return captured.read_text().strip()


@pytest.mark.parametrize("bandwidth_limit", [None, 2048])
def test_the_real_clients_request_is_accepted(tmp_path, bandwidth_limit):
    request = client_request(tmp_path, bandwidth_limit=bandwidth_limit)
    assert request.startswith("rsync --server ") and request.endswith(f" . {ROOT}")

    options = receiver.check_request(request, ROOT)

    assert "--delete-delay" in options and any(option.startswith("-") and "R" in option for option in options)
    cluster = next(option for option in options if not option.startswith("--"))
    assert not set(cluster.partition("e")[0]) & {"D", "A", "X"}, "the plugin's own client asks for plain files only"
    assert ("--bwlimit=2048" in options) == (bandwidth_limit is not None)


@pytest.mark.parametrize(
    "option",
    [
        "--sender",
        "--delete-excluded",
        "--remove-source-files",
        "--timeout=1234567",
        "--timeout=",
        "--timeout=\uff11\uff12",  # full-width digits: str.isdigit() would say yes
        "--bwlimit=10G",
        "--bwlimit=K",
        "-logtprRe.iLs;id",
        "-logtprRwe.iLs",  # w is not an allowed letter
        "-",
        "-e.iLs",  # no letters before the capabilities
        "--log-file=/etc/passwd",
    ],
)
def test_options_outside_the_list_are_refused(option):
    with pytest.raises(receiver.Refused):
        receiver.check_request(f"rsync --server -logtprRe.iLsfxCIvu {option} . {ROOT}", ROOT)


def test_requests_that_are_not_a_receiving_rsync_are_refused():
    for request, reason in [
        ("", "no shell"),
        ("id", "only accepts the master's rsync"),
        (f"rsync --server --sender -logtprRe.iLsfxCIvu . {ROOT}", "reading from this node"),
        (f"rsync --server -logtpre.iLsfxCIvu . {ROOT}", "--relative"),
        ("rsync --server -logtprRe.iLsfxCIvu . /etc", "not the sync root"),
    ]:
        with pytest.raises(receiver.Refused, match=reason):
            receiver.check_request(request, ROOT)


def test_policy_paths_and_names_must_be_plain():
    good = receiver.parse_policy(["--root", ROOT, "--allow", "/var/lib/asterisk/moh", "--protect", "monitor"])
    assert good == {
        "root": ROOT,
        "allow": ["/var/lib/asterisk/moh"],
        "allow_tree": [],
        "protect": ["monitor"],
        "send": [],
        "send_in_tree": [],
    }
    for flag, value in [
        ("--send", "/var/spool/../etc"),
        ("--send-in-tree", "../monitor"),
        ("--allow", "/var/lib/asterisk/moh\n"),
        ("--allow", "relative/path"),
        ("--allow", "/var/lib/../../etc"),
        ("--allow", "/var/./lib"),
        ("--allow", "/var/lib/a b"),
        ("--allow", "/var/lib/é"),
        ("--protect", ".."),
        ("--protect", "a/b"),
        ("--protect", ""),
    ]:
        with pytest.raises(receiver.Refused):
            receiver.parse_policy(["--root", ROOT, flag, value])


def test_mountinfo_escapes_are_decoded_once():
    assert receiver.unescape_mount_point(r"/mnt/a\040b") == "/mnt/a b"
    assert receiver.unescape_mount_point(r"/mnt/back\134040slash") == "/mnt/back\\040slash"
    assert receiver.unescape_mount_point(r"/mnt/tab\011x\012y") == "/mnt/tab\tx\ny"
    assert receiver.unescape_mount_point("/plain/path") == "/plain/path"
