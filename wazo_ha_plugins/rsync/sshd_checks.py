"""Preflight of the slave's sshd for ``wazo-ha sync init``: can the master log in as ``user`` (root)?

``sync init`` sends the slave's root password once (paramiko, ``password`` or
``keyboard-interactive``); afterwards the sync key logs in (``publickey``).
Two views, neither of which sends a password:

* from the master (:func:`peer_sshd`): the slave's sshd answers the key
  exchange, presents the pinned host key (when one is pinned), and offers
  ``user`` a password method (``auth_none`` asks for the list). OpenSSH
  offers the same list to root whatever ``PermitRootLogin`` says, so this
  view cannot see that setting; it says so.
* on the slave (:func:`local_sshd`): ``sshd -T -C user=…,host=…,addr=<master>``
  prints the settings sshd would apply to the master's connection,
  ``Match`` blocks included: ``PermitRootLogin``, ``PasswordAuthentication``,
  ``KbdInteractiveAuthentication``, ``PubkeyAuthentication``.

Before ``sync init`` a password login is needed (``PermitRootLogin yes``);
once the master's key is installed, ``prohibit-password`` is enough and a
still-open password login is a warning.
"""

from __future__ import annotations

import socket
import subprocess

from wazo_ha_core import CheckResult, PluginError

from . import hostkeys, trust

PASSWORD_METHODS = ("password", "keyboard-interactive")
#: PermitRootLogin values that let root in with a key.
KEY_LOGIN_VALUES = ("yes", "prohibit-password", "forced-commands-only")
DROP_IN = "/etc/ssh/sshd_config.d/wazo-ha-sync-init.conf"


def open_for_init_fix(user: str, master: str) -> str:
    root_line = " '  PermitRootLogin yes'," if user == "root" else ""
    return (
        f"on the slave, let {user} log in once with a password from the master: put the lines "
        f"'Match Address {master}',{root_line} '  PasswordAuthentication yes' in {DROP_IN} "
        "(Debian's default is PermitRootLogin prohibit-password), `systemctl reload ssh`, run `wazo-ha sync init` "
        f"on the master, then remove {DROP_IN} and reload again (the sync key needs only "
        "PermitRootLogin prohibit-password)"
    )


def close_after_init_fix(master: str) -> str:
    return (
        f"the sync key is installed: remove the password opening made for `sync init` (e.g. {DROP_IN}) so that "
        f"PermitRootLogin is prohibit-password for {master}, then `systemctl reload ssh`"
    )


# --- from the master ------------------------------------------------------------------------


def peer_sshd(plugin, peer: str) -> CheckResult:
    """The slave's sshd answers, presents the pinned key, and offers what ``sync init`` (or the key) needs."""
    import paramiko

    try:
        user, port = plugin._user(), plugin._port()
        key_file = plugin._local_path("key_file")
        known_hosts = plugin._local_path("known_hosts_file")
        pinned = hostkeys.pinned_keys(known_hosts, trust.host_pattern(peer, port))
    except PluginError as exc:
        return CheckResult.fail(str(exc), "fix plugin_config.rsync")
    timeout = plugin._connect_timeout()
    where = f"[{peer}]:{port}" if ":" in peer else f"{peer}:{port}"
    try:
        sock = socket.create_connection((peer, port), timeout=timeout)
    except OSError as exc:
        return CheckResult.fail(
            f"{where}: {exc.strerror or exc}",
            f"run sshd on the slave and open TCP {port} from the master to it (firewall)",
        )
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = transport.auth_timeout = timeout
        try:
            transport.start_client(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return CheckResult.fail(f"{where} does not speak ssh: {exc}", f"run OpenSSH's sshd on the slave on {port}")
        version = transport.remote_version
        server_key = transport.get_remote_server_key()
        presented = hostkeys.HostKey(server_key.get_name(), server_key.asbytes())
        if pinned and presented not in pinned:
            return CheckResult.fail(
                f"{where} presents the host key {presented}, not the one pinned in {known_hosts}",
                "if the slave was reinstalled, pin its new key (`ssh root@SLAVE wazo-ha sync host-key show | "
                "wazo-ha sync host-key pin --replace`); otherwise someone may be impersonating the slave",
            )
        try:
            transport.auth_none(user)
        except paramiko.BadAuthenticationType as exc:
            offered = list(exc.allowed_types)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            return CheckResult.fail(f"{where}: asking the login methods failed: {exc}", "check the slave's sshd logs")
        else:
            return CheckResult.fail(
                f"{where} lets {user} in without any authentication",
                "fix the slave's sshd (PermitEmptyPasswords no, no 'none' authentication)",
            )
    finally:
        transport.close()
    shown = f"{version}; offers {user}: {', '.join(offered) or 'nothing'}"
    if key_file.exists():
        if "publickey" not in offered:
            return CheckResult.fail(
                f"{shown}: no publickey login, the sync key cannot log in",
                "set PubkeyAuthentication yes and PermitRootLogin prohibit-password on the slave",
            )
        return CheckResult.passed(f"{shown} (the sync key exists: no password needed)")
    if not any(method in offered for method in PASSWORD_METHODS):
        return CheckResult.fail(
            f"{shown}: no password login, which `wazo-ha sync init` needs once",
            open_for_init_fix(user, _this_node_towards(peer, port)),
        )
    caveat = (
        "; whether root may use it (PermitRootLogin yes) cannot be seen from here: "
        "`wazo-ha doctor --as slave` on the slave reads it"
        if user == "root"
        else ""
    )
    return CheckResult.passed(f"{shown}: `sync init` can send the password{caveat}")


# --- on the slave ---------------------------------------------------------------------------


def local_sshd(plugin, master: str) -> CheckResult:
    """What this node's sshd would allow the master's connection, from ``sshd -T`` (no login attempted)."""
    try:
        user = plugin._user()
        authorized = plugin.trust_files("slave")[0]
    except PluginError as exc:
        return CheckResult.fail(str(exc), "fix plugin_config.rsync")
    command = [str(part) for part in plugin.config["sshd_test_command"]]
    argv = [*command, "-C", f"user={user},host={master},addr={master}"]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=plugin._connect_timeout() * 2, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return CheckResult.fail(
            f"{command[0] if command else 'sshd'} not found: no OpenSSH server on this node",
            "apt-get install openssh-server (the master's file sync logs in here over ssh)",
        )
    except subprocess.TimeoutExpired:
        return CheckResult.fail(f"{' '.join(argv)} did not finish", "check sshd's configuration by hand (sshd -t)")
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return CheckResult.fail(
            f"sshd -T refused its configuration: {reason}",
            "fix /etc/ssh/sshd_config (sshd -t shows the error); run the doctor as root",
        )
    options = parse_sshd_t(result.stdout)
    root_login = options.get("permitrootlogin", "prohibit-password") if user == "root" else "yes"
    if root_login == "without-password":  # how sshd -T prints prohibit-password
        root_login = "prohibit-password"
    password = options.get("passwordauthentication") == "yes" or options.get("kbdinteractiveauthentication") == "yes"
    key_login = options.get("pubkeyauthentication", "yes") == "yes" and root_login in KEY_LOGIN_VALUES
    password_login = password and root_login == "yes"
    shown = (
        f"for {user} from {master}: "
        + (f"PermitRootLogin {root_login}, " if user == "root" else "")
        + f"PasswordAuthentication {options.get('passwordauthentication', '?')}, "
        f"KbdInteractiveAuthentication {options.get('kbdinteractiveauthentication', '?')}, "
        f"PubkeyAuthentication {options.get('pubkeyauthentication', '?')}"
    )
    if _key_installed(authorized):
        if not key_login:
            return CheckResult.fail(
                f"{shown}: the master's sync key (in {authorized}) cannot log in",
                "set PubkeyAuthentication yes and PermitRootLogin prohibit-password for the master",
            )
        if password_login:
            return CheckResult.warn(
                f"{shown}: the sync key is installed, yet root may still log in with a password",
                close_after_init_fix(master),
            )
        return CheckResult.passed(f"{shown}: the master's sync key is installed and may log in")
    if not password_login:
        return CheckResult.fail(
            f"{shown}: `wazo-ha sync init` on the master cannot log in with the password",
            open_for_init_fix(user, master),
        )
    return CheckResult.passed(f"{shown}: `wazo-ha sync init` can log in once with the password")


def parse_sshd_t(output: str) -> dict[str, str]:
    """``sshd -T`` lines (``keyword value…``) as keyword → value; a repeated keyword keeps its first value."""
    options: dict[str, str] = {}
    for line in output.splitlines():
        keyword, _, value = line.strip().partition(" ")
        if keyword:
            options.setdefault(keyword.lower(), value.strip().lower())
    return options


def _this_node_towards(peer: str, port: int) -> str:
    """The address the slave sees this master connect from (for its ``Match Address``)."""
    try:
        return trust.source_address(peer, port).partition("%")[0]
    except PluginError:
        return "<this master's address>"


def _key_installed(authorized) -> bool:
    try:
        content = authorized.read_bytes()
    except OSError:  # missing or unreadable: the doctor cannot tell it is there
        return False
    return trust.without_our_lines(content)[1] > 0
