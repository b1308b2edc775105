"""The rsync plugin's ``wazo-ha doctor`` checks.

On the slave: what its sshd allows the master's login (``sshd -T``, see
:mod:`.sshd_checks`): a password once for ``sync init``, the key afterwards.

On the master:

* the slave's sshd: it answers, presents the pinned host key, offers the
  login methods ``sync init`` (a password) or the key needs (:mod:`.sshd_checks`);
* TCP from the master to the slave's ssh port;
* the sync key: present, a regular file of mode 0600 (or stricter), its
  public half beside it, the slave's host key pinned;
* the key is restricted on the slave: a login with it asking for a shell
  command (``echo <marker>``) must be refused by the forced command. The
  marker coming back means the key line on the slave lost its
  ``command=``/``restrict`` options and whoever holds the key is root
  there. (From the master the ``from=`` option cannot be told apart; the
  forced command is what matters most.)
"""

from __future__ import annotations

import secrets
import stat
import subprocess

from wazo_ha_core import CheckResult, FunctionCheck, PluginError, TcpCheck

from . import hostkeys, sshd_checks, transfer, trust

PIN_FIX = "pin the slave's host keys: `ssh root@SLAVE wazo-ha sync host-key show | wazo-ha sync host-key pin`"
INIT_FIX = "run `wazo-ha sync init` on the master (it creates the key and installs it, restricted, on the slave)"


NOT_YET = "expected before `wazo-ha sync init`"
NOT_YET_FIX = (
    "after enabling both nodes, pin the slave's host keys and run `wazo-ha sync init` on the master "
    "(quick start, step 4), then `wazo-ha doctor` again"
)


def rsync_checks(plugin, node_type: str, peer: str | None, preflight: bool = False) -> list:
    if not peer:
        return []
    if node_type == "slave":
        return [FunctionCheck("sshd lets the master in", lambda: sshd_checks.local_sshd(plugin, peer))]
    if node_type != "master":
        return []
    port = plugin._port()
    timeout = plugin._connect_timeout()
    return [
        FunctionCheck("slave sshd", lambda: sshd_checks.peer_sshd(plugin, peer), timeout=timeout * 3 + 5),
        TcpCheck(
            f"master → slave TCP {port}",
            peer,
            port,
            timeout,
            f"open TCP {port} from the master to the slave {peer} (firewall) and run sshd on the slave",
        ),
        FunctionCheck("ssh key", lambda: _not_yet(key_file_check(plugin, peer), plugin, preflight)),
        FunctionCheck(
            "ssh key restricted",
            lambda: _not_yet(restricted_check(plugin, peer), plugin, preflight),
            timeout=timeout * 3 + 5,
        ),
    ]


def _not_yet(result: CheckResult, plugin, preflight: bool) -> CheckResult:
    """Before enabling, no sync key yet is the normal state: a WARN saying when it comes, not a FAIL."""
    if not preflight or result.status != "FAIL":
        return result
    try:
        missing = not plugin._local_path("key_file").exists()
    except PluginError:
        return result
    return CheckResult.warn(f"{result.detail} ({NOT_YET})", NOT_YET_FIX) if missing else result


def key_file_check(plugin, peer: str) -> CheckResult:
    try:
        key_file = plugin._local_path("key_file")
        known_hosts = plugin._local_path("known_hosts_file")
    except PluginError as exc:
        return CheckResult.fail(str(exc), "fix plugin_config.rsync")
    try:
        info = key_file.lstat()
    except FileNotFoundError:
        return CheckResult.fail(f"no sync key at {key_file}", INIT_FIX)
    if not stat.S_ISREG(info.st_mode):
        return CheckResult.fail(f"{key_file} is not a regular file", f"remove it, then {INIT_FIX}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return CheckResult.fail(f"{key_file} has mode {mode:04o}: others may read the key", f"chmod 600 {key_file}")
    if info.st_uid != 0 and plugin.context.settings.root == plugin.context.settings.resolve("/"):
        return CheckResult.warn(f"{key_file} is owned by uid {info.st_uid}, not root", f"chown root: {key_file}")
    if not key_file.with_name(key_file.name + ".pub").exists():
        return CheckResult.fail(f"{key_file}.pub is missing", "wazo-ha sync init --rotate (makes a new pair)")
    try:
        pinned = hostkeys.pinned_keys(known_hosts, trust.host_pattern(peer, plugin._port()))
    except PluginError as exc:
        return CheckResult.fail(str(exc), f"fix or remove that line, then pin the slave's host keys again ({PIN_FIX})")
    if not pinned:
        return CheckResult.fail(
            f"the slave {peer}'s host key is not pinned in {known_hosts}", f"{PIN_FIX}, then {INIT_FIX}"
        )
    return CheckResult.passed(f"{key_file} (mode {mode:04o}), slave host key pinned in {known_hosts}")


def restricted_check(plugin, peer: str) -> CheckResult:
    try:
        key_file = plugin._local_path("key_file")
        known_hosts = plugin._local_path("known_hosts_file")
        user, port = plugin._user(), plugin._port()
    except PluginError as exc:
        return CheckResult.fail(str(exc), "fix plugin_config.rsync")
    if not key_file.exists():
        return CheckResult.fail(f"no sync key at {key_file}", INIT_FIX)
    marker = f"wazo-ha-doctor-{secrets.token_hex(8)}"
    timeout = plugin._connect_timeout()
    ssh = transfer.ssh_command(str(key_file), str(known_hosts), port, timeout)
    host = f"[{peer}]" if ":" in peer else peer
    try:
        result = subprocess.run(
            [*ssh, "-T", f"{user}@{host}", "echo", marker],
            capture_output=True,
            text=True,
            timeout=timeout * 3 + 2,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return CheckResult.fail(f"ssh to {peer} did not finish within {timeout * 3 + 2:g} s", "check the link")
    if marker in result.stdout:
        return CheckResult.fail(
            f"the sync key runs any command on the slave {peer} as {user}: its authorized_keys line is unrestricted",
            f"wazo-ha sync init --rotate (reinstalls the key with from=, restrict and the forced command) and remove "
            f"any other line with this key from {plugin.config['authorized_keys_file']} on the slave",
        )
    if result.returncode == 255:
        reason = (result.stderr.strip().splitlines() or ["ssh failed"])[-1]
        return CheckResult.fail(f"cannot log in to {peer} with the sync key: {reason}", INIT_FIX)
    return CheckResult.passed("a shell command with the key was refused by the slave's forced command")
