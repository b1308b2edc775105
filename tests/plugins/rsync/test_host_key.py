"""The slave's host key at ``sync init``: no password goes to a host key nobody verified.

Against the rig's real sshd (LogLevel VERBOSE, which logs every password
attempt as ``Accepted password`` / ``Failed password``): init refuses an
unpinned key before authenticating, refuses an impostor at the slave's
address, and accepts a key pinned with ``host-key show | host-key pin``, a
matching ``--host-key-fingerprint``, a ``yes`` typed on a terminal, or an
explicit ``--accept-new``. The CLI runs in a child process in a new session,
so it has no controlling terminal unless the test gives it a pty.
"""

from __future__ import annotations

import logging
import os
import pty
import re
import select
import stat
import subprocess
import sys
import time

import pytest

from tests.rig.sshd import Sshd
from tests.rig.waiting import wait_for
from wazo_ha_core import PeerVerification, PluginError

from .conftest import PEER, write

RUN_CLI = "import sys; from wazo_ha_core.cli.main import main; sys.exit(main())"
ASK_ON_TERMINAL = (
    "import fcntl, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "from wazo_ha_core.cli.main import main; sys.exit(main())"
)


def keygen_fingerprint(public_key_file) -> str:
    """The fingerprint as the operator reads it on the slave: ``ssh-keygen -lf``."""
    output = subprocess.run(["ssh-keygen", "-lf", str(public_key_file)], capture_output=True, text=True, check=True)
    return output.stdout.split()[1]


def slave_fingerprint(pair) -> str:
    return keygen_fingerprint(pair.sshd.host_key.with_suffix(".pub"))


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``wazo-ha ARGS`` in a child process with no controlling terminal (a new session, stdin not a tty)."""
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def assert_no_password_attempt(sshd: Sshd, since: int = 0) -> None:
    """The connection reached ``sshd`` and ended before any password was tried (from its VERBOSE log)."""
    wait_for(lambda: "Connection from" in sshd.log()[since:], 30, "the ssh connection in the sshd log")
    wait_for(lambda: "[preauth]" in sshd.log()[since:], 30, "the pre-authentication end in the sshd log")
    session = sshd.log()[since:]
    assert "password" not in session.lower(), f"a password reached the server:\n{session}"


def journal(pair, kind: str):
    return pair.engine().store.events(kind=kind, limit=10)


# --- (a) no pin, no fingerprint, no terminal --------------------------------------------


def test_init_without_pin_or_terminal_refuses_before_any_password(pair):
    pair.engine("master")
    done = cli("sync", "init", "--config", str(pair.config_file))

    assert done.returncode == 1, done.stdout + done.stderr
    expected = slave_fingerprint(pair)
    assert f"presents the host key {expected} (ssh-ed25519), which nothing verifies" in done.stderr
    assert "refusing before any password is sent" in done.stderr
    for way in ("wazo-ha sync host-key show", "wazo-ha sync host-key pin", "--host-key-fingerprint", "--accept-new"):
        assert way in done.stderr, way
    assert_no_password_attempt(pair.sshd)
    assert pair.sshd.authorized_keys.read_text() == ""
    assert not pair.known_hosts.exists() and not pair.key_file.exists()
    [refused] = journal(pair, "sync-init")
    assert refused.outcome == "failed" and expected in refused.message


def test_the_host_key_is_checked_before_the_password_is_even_read(pair):
    """No password source at all: the refusal is about the host key, so the password was never needed."""
    with pytest.raises(PluginError, match="which nothing verifies"):
        pair.plugin(password_env="WAZO_HA_TEST_NO_SUCH_VARIABLE").init(PEER)
    assert_no_password_attempt(pair.sshd)


# --- (b) a man in the middle ---------------------------------------------------------------


def test_an_impostor_at_the_slaves_address_is_refused_with_both_fingerprints(pair):
    key_type, blob = pair.sshd.host_public_key
    write(pair.known_hosts, f"[{PEER}]:{pair.sshd.port} {key_type} {blob}\n")  # the real slave's key, pinned
    pinned = slave_fingerprint(pair)
    pair.sshd.kill()
    impostor = Sshd.start(port=pair.sshd.port)  # same address and port, another host key
    try:
        presented = keygen_fingerprint(impostor.host_key.with_suffix(".pub"))
        assert presented != pinned
        for options in ({}, {"verification": PeerVerification(accept_new=True)}):
            since = len(impostor.log())
            with pytest.raises(PluginError) as refused:
                pair.plugin().init(PEER, **options)
            message = str(refused.value)
            assert "host key of the slave 127.0.0.1 does not match the key pinned in" in message
            assert f"pinned {pinned} (ssh-ed25519), presented {presented} (ssh-ed25519)" in message
            assert_no_password_attempt(impostor, since)
        assert impostor.authorized_keys.read_text() == ""
        assert pair.known_hosts.read_text() == f"[{PEER}]:{pair.sshd.port} {key_type} {blob}\n"
    finally:
        impostor.stop()


# --- (c) host-key show | host-key pin, then init ------------------------------------------


def test_show_on_the_slave_piped_into_pin_on_the_master_then_init(pair):
    pair.engine("master")
    command = [sys.executable, "-c", RUN_CLI, "sync", "host-key"]
    show = subprocess.Popen(
        [*command, "show", "--config", str(pair.slave_node_config())],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    pin = subprocess.run(
        [*command, "pin", "--config", str(pair.config_file)],
        stdin=show.stdout,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
    show.stdout.close()
    assert show.wait(timeout=60) == 0
    expected = slave_fingerprint(pair)
    assert pin.returncode == 0, pin.stderr
    assert f"rsync: pinned {expected} (ssh-ed25519) for [{PEER}]:{pair.sshd.port}" in pin.stdout
    key_type, blob = pair.sshd.host_public_key
    assert pair.known_hosts.read_text() == f"[{PEER}]:{pair.sshd.port} {key_type} {blob}\n"
    assert stat.S_IMODE(pair.known_hosts.stat().st_mode) == 0o644

    done = cli("sync", "init", "--config", str(pair.config_file))

    assert done.returncode == 0, done.stderr
    assert "rsync: new key, key installed on the slave" in done.stdout
    assert "Accepted password for root" in pair.sshd.log()
    [event] = journal(pair, "sync-init")
    assert event.figures["host_key"] == expected and event.figures["host_key_trusted_by"] == "pin"
    [pinned] = journal(pair, "sync-pin")
    assert pinned.outcome == "ok" and pinned.figures["host_keys"] == [expected]


def test_show_prints_each_host_key_with_its_fingerprint_and_skips_missing_files(pair):
    pub = pair.sshd.host_key.with_suffix(".pub")
    write(pair.master / "etc/ssh/ssh_host_ed25519_key.pub", pub.read_text())
    text = pair.plugin().show_host_keys()
    key_type, blob = pair.sshd.host_public_key
    assert f"\n{key_type} {blob} {keygen_fingerprint(pub)}\n" in text
    assert len([line for line in text.splitlines() if not line.startswith("#")]) == 1

    with pytest.raises(PluginError, match=r"no sshd host key found on this node: looked for .*/etc/ssh/nothing\.pub"):
        pair.plugin(host_key_files=["/etc/ssh/nothing.pub"]).show_host_keys()
    write(pair.master / "etc/ssh/bad.pub", "ssh-ed25519 not!base64\n")
    with pytest.raises(PluginError, match=r"bad\.pub line 1: 'not!base64' is not a base64 key"):
        pair.plugin(host_key_files=["/etc/ssh/bad.pub"]).show_host_keys()


def test_pin_refuses_a_different_key_unless_replace_and_names_both(pair):
    pair.engine("master")
    shown = cli("sync", "host-key", "show", "--config", str(pair.slave_node_config())).stdout
    assert cli("sync", "host-key", "pin", "--config", str(pair.config_file), stdin=shown).returncode == 0
    again = cli("sync", "host-key", "pin", "--config", str(pair.config_file), stdin=shown)
    assert again.returncode == 0 and "already pinned, nothing changed" in again.stdout
    old = slave_fingerprint(pair)
    pair.sshd.new_host_key()
    other = pair.sshd.host_key.with_suffix(".pub").read_text()
    new = keygen_fingerprint(pair.sshd.host_key.with_suffix(".pub"))
    before = pair.known_hosts.read_text()

    refused = cli("sync", "host-key", "pin", "--config", str(pair.config_file), stdin=other)
    assert refused.returncode == 1
    assert f"is {old} (ssh-ed25519); the keys given are {new} (ssh-ed25519): refusing" in refused.stderr
    assert pair.known_hosts.read_text() == before

    replaced = cli("sync", "host-key", "pin", "--replace", "--config", str(pair.config_file), stdin=other)
    assert replaced.returncode == 0 and new in replaced.stdout
    assert pair.known_hosts.read_text().split()[2] == pair.sshd.host_public_key[1]


def test_pin_refuses_bad_input_naming_it_and_changes_nothing(pair):
    pair.engine("master")
    config = ["--config", str(pair.config_file)]
    cases = {
        "ssh-dss AAAA\n": "'ssh-dss' is not a host key type",
        f"{slave_fingerprint(pair)}\n": "a fingerprint alone cannot be pinned",
        "ssh-ed25519 " + "A" * 500 + "\n": "is not a valid ssh-ed25519 key",
        "": "no host key given on stdin",
    }
    for text, expected in cases.items():
        done = cli("sync", "host-key", "pin", *config, stdin=text)
        assert done.returncode in (1, 2) and expected in done.stderr, (text, done.stderr)
        assert len(done.stderr) < 600, "the bad value is cut, not echoed whole"
    key_type, blob = pair.sshd.host_public_key
    cut = cli("sync", "host-key", "pin", *config, stdin=f"{key_type} {blob} SHA256:{'x' * 43}\n")
    assert "the text was altered or cut" in cut.stderr
    assert not pair.known_hosts.exists()


# --- (d) --host-key-fingerprint ------------------------------------------------------------


def test_host_key_fingerprint_wrong_is_refused_before_the_password_right_is_pinned(pair):
    pair.engine("master")
    config = ["--config", str(pair.config_file)]
    other = pair.tmp / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong, right = keygen_fingerprint(other.with_suffix(".pub")), slave_fingerprint(pair)

    refused = cli("sync", "init", "--host-key-fingerprint", wrong, *config)
    assert refused.returncode == 1
    assert f"does not match the fingerprint given: expected {wrong}, presented {right} (ssh-ed25519)" in refused.stderr
    assert_no_password_attempt(pair.sshd)

    since = len(pair.sshd.log())
    garbled = cli("sync", "init", "--host-key-fingerprint", "SHA256:" + "q" * 300 + "\nx", *config)
    assert garbled.returncode == 1 and "--host-key-fingerprint: 'SHA256:qqq" in garbled.stderr
    assert "is not a SHA256 fingerprint" in garbled.stderr and len(garbled.stderr) < 500
    assert "Connection from" not in pair.sshd.log()[since:], "a malformed fingerprint must not even connect"
    assert not pair.known_hosts.exists() and pair.sshd.authorized_keys.read_text() == ""

    accepted = cli("sync", "init", "--host-key-fingerprint", f" {right}\n", *config)
    assert accepted.returncode == 0, accepted.stderr
    assert f"host key {right} pinned" in accepted.stdout
    assert pair.known_hosts.read_text().split()[1:] == list(pair.sshd.host_public_key)
    assert journal(pair, "sync-init")[0].figures["host_key_trusted_by"] == "fingerprint"


# --- (e) --accept-new ----------------------------------------------------------------------


def test_accept_new_is_an_explicit_choice_logged_and_journaled_with_the_fingerprint(pair, caplog):
    expected = slave_fingerprint(pair)
    with caplog.at_level(logging.WARNING, logger="t"):
        result = pair.plugin().init(PEER, verification=PeerVerification(accept_new=True))
    assert result.outcome == "synced" and result.figures["host_key_trusted_by"] == "accept-new"
    [record] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert expected in record.getMessage() and "without verification (--accept-new)" in record.getMessage()
    assert result.warnings == [f"the slave's host key {expected} (ssh-ed25519) was accepted without verification "
                               "(--accept-new)"]  # fmt: skip
    assert pair.known_hosts.read_text().split()[1:] == list(pair.sshd.host_public_key)


def test_accept_new_through_the_cli_warns_and_journals(pair):
    pair.engine("master")
    done = cli("sync", "init", "--accept-new", "--config", str(pair.config_file))
    assert done.returncode == 0, done.stderr
    expected = slave_fingerprint(pair)
    assert f"wazo-ha: warning: the slave's host key {expected} (ssh-ed25519) was accepted without verification" in (
        done.stderr
    )
    [event] = journal(pair, "sync-init")
    assert event.outcome == "ok" and event.figures["host_key_trusted_by"] == "accept-new"
    assert expected in event.figures["warnings"][0]
    both = cli("sync", "init", "--accept-new", "--host-key-fingerprint", expected, "--config", str(pair.config_file))
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


# --- the terminal confirmation ----------------------------------------------------------------


def on_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run ``wazo-ha ARGS`` with a pty as its controlling terminal; type ``answer`` at the yes/no question."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", ASK_ON_TERMINAL, *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    output = b""
    answered = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"Type yes" in output:
            os.write(controller, answer.encode() + b"\n")
            answered = True
    os.close(controller)
    return process.wait(timeout=60), output.decode(errors="replace")


def test_on_a_terminal_the_fingerprint_is_shown_and_only_yes_sends_the_password(pair):
    pair.engine("master")
    args = ["sync", "init", "--config", str(pair.config_file)]
    expected = slave_fingerprint(pair)
    for answer in ("", "y", "no"):
        since = len(pair.sshd.log())
        code, output = on_terminal(args, answer)
        assert code == 1, output
        assert f"presents the ssh host key {expected} (ssh-ed25519)" in output
        assert "not confirmed: nothing sent" in output
        assert_no_password_attempt(pair.sshd, since)
    assert not pair.known_hosts.exists()

    code, output = on_terminal(args, "yes")
    assert code == 0, output
    assert f"host key {expected} pinned" in output
    assert journal(pair, "sync-init")[0].figures["host_key_trusted_by"] == "terminal"


# --- (f) a changed host key during sync ------------------------------------------------------


def test_a_changed_host_key_during_sync_names_the_pinned_and_the_presented_fingerprint(pair):
    write(pair.master / "etc/xivo/asterisk/a.conf", "a")
    key_type, blob = pair.sshd.host_public_key
    write(pair.known_hosts, f"[{PEER}]:{pair.sshd.port} {key_type} {blob}\n")  # pinned, as `host-key pin` does
    pair.plugin().init(PEER)
    pinned = slave_fingerprint(pair)
    pair.sshd.kill()
    pair.sshd.new_host_key()
    pair.sshd.run()
    presented = slave_fingerprint(pair)

    with pytest.raises(PluginError) as refused:
        pair.plugin().sync(PEER, ["/etc/xivo/asterisk"])
    message = str(refused.value)
    assert f"does not match the key pinned in {pair.known_hosts}: pinned {pinned}, presented {presented}" in message
    assert "host-key pin --replace" in message
    assert not (pair.slave / "etc").exists()


def test_the_fingerprint_is_the_one_ssh_keygen_prints_for_every_key_type(tmp_path):
    from wazo_ha_plugins.rsync import hostkeys

    for key_type, bits in (("ed25519", []), ("ecdsa", ["-b", "384"]), ("rsa", ["-b", "2048"])):
        path = tmp_path / key_type
        subprocess.run(["ssh-keygen", "-q", "-t", key_type, *bits, "-N", "", "-f", str(path)], check=True)
        [key] = hostkeys.parse_key_text(path.with_suffix(".pub").read_text(), "test")
        assert key.fingerprint == keygen_fingerprint(path.with_suffix(".pub"))
        assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", key.fingerprint)
