"""``rsync``: the default :class:`FileSyncBackend` — rsync over ssh with a key that can only sync.

``host-key show`` (on the slave) prints its sshd host keys; ``host-key pin``
(on the master) pins them in the library's own known_hosts (:mod:`.hostkeys`).
``init`` (once, on the master, with the slave's password) checks the slave's
host key right after the key exchange — pinned, or matching the operator's
fingerprint, or confirmed on a terminal, or explicitly accepted — and only
then sends the password; it creates an ed25519 key and installs it on the
slave restricted to the master's address and to a forced command
(:mod:`.receiver`) that only lets rsync write the synced directories.
``sync`` runs ``rsync -rlptgoR --delete-delay`` over ssh with that key, that pin,
batch mode and a connect timeout, and reports what it moved.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import socket
import stat
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from wazo_ha_core import (
    FileSyncBackend,
    NotInitialised,
    OperationResult,
    PeerUnreachable,
    PeerVerification,
    PluginError,
    ProgressCallback,
    no_progress,
)
from wazo_ha_core.extensions import ONLY_PINNED
from wazo_ha_core.logs import REPORTED

from . import hostkeys, transfer, trust
from .doctor import rsync_checks

if TYPE_CHECKING:  # paramiko is imported where the plugin speaks SSH itself (init, host keys)
    import paramiko

RECEIVER_SOURCE = Path(__file__).with_name("receiver.py")


def copy_back_directories(settings) -> list[str]:
    """The ``--send`` directories of the forced command: the voicemail spool and ``copy_back.directories``."""
    return [settings.get("copy_back.voicemail_dir"), *settings.get("copy_back.directories")]


class RsyncBackend(FileSyncBackend):
    default_config = {
        "user": "root",
        "port": 22,
        # On this node, resolved under settings `root`:
        "key_file": "/root/.ssh/wazo-ha-sync_ed25519",
        "known_hosts_file": "/var/lib/wazo-ha/ssh/known_hosts",
        # On the slave, as the slave sees them:
        "authorized_keys_file": "/root/.ssh/authorized_keys",
        "receiver_path": "/usr/local/libexec/wazo-ha/rsync-receiver",
        "remote_python": "/usr/bin/python3",
        "remote_root": "/",
        # Addresses the key is accepted from; empty: the address this node uses to reach the slave.
        "from_addresses": [],
        "password_file": None,
        # On the slave (`wazo-ha sync host-key show`), resolved under settings `root`; missing ones skipped:
        "host_key_files": [
            "/etc/ssh/ssh_host_ed25519_key.pub",
            "/etc/ssh/ssh_host_ecdsa_key.pub",
            "/etc/ssh/ssh_host_rsa_key.pub",
        ],
        "password_env": None,
        # On the slave, `wazo-ha doctor` asks sshd what it allows the master (`-C user=…,host=…,addr=…` added).
        "sshd_test_command": ["/usr/sbin/sshd", "-T"],
        "io_timeout": 60,
        "bandwidth_limit": None,
    }

    # --- init ------------------------------------------------------------------------

    def init(self, peer: str, *, rotate: bool = False, verification: PeerVerification = ONLY_PINNED) -> OperationResult:
        """Install the sync key on the slave; the slave's host key is checked before any password is sent.

        The key the slave presents must be the one pinned in our known_hosts
        (``host-key pin``), or, when none is pinned, match
        ``verification.fingerprint``, be confirmed by the operator, or be
        accepted unverified with ``verification.accept_new``. Otherwise
        :class:`PluginError` before authenticating, and nothing changes.
        """
        key_file = self._local_path("key_file")
        known_hosts = self._local_path("known_hosts_file")
        user, port = self._user(), self._port()
        pattern = trust.host_pattern(peer, port)
        if verification.fingerprint is not None:
            hostkeys.parse_fingerprint(verification.fingerprint)  # a typo is refused before connecting
        pinned = hostkeys.pinned_keys(known_hosts, pattern)
        sources, command = (
            self._from_addresses(peer, port),
            self._forced_command(),
        )  # settings errors: before connecting
        retired: set[str] = set()
        fresh_key = not key_file.exists()
        with self._verified_session(peer, user, port, pinned, verification) as (sftp, presented, trusted_by):
            staged = key_file
            if rotate and not fresh_key:
                retired.add(trust.public_key(key_file)[1])
                staged = key_file.with_name(key_file.name + ".new")
            if fresh_key or rotate:
                trust.generate_key(staged, f"{trust.KEY_COMMENT}@{socket.gethostname()}")
            key_type, blob = trust.public_key(staged)
            line = trust.authorized_line(key_type, blob, sources, command)
            installed = self._install(sftp, line, retired)
        if staged != key_file:
            os.replace(staged.with_name(staged.name + ".pub"), key_file.with_name(key_file.name + ".pub"))
            os.replace(staged, key_file)
        newly_pinned = trusted_by != "pin" and hostkeys.pin_keys(known_hosts, pattern, [presented])
        changed = [
            what
            for what, done in (
                ("new key" if not rotate else "key rotated", fresh_key or rotate),
                ("key installed on the slave", installed),
                (f"host key {presented.fingerprint} pinned", newly_pinned),
            )
            if done
        ]
        message = ", ".join(changed) if changed else "already set up, nothing changed"
        warnings = []
        if trusted_by == "accept-new":
            warnings.append(f"the slave's host key {presented} was accepted without verification (--accept-new)")
        self.log.info("file sync init with %s: %s", peer, message)
        return OperationResult(
            outcome="synced" if changed else "skipped",
            message=message,
            figures={
                "key_file": str(key_file),
                "known_hosts": str(known_hosts),
                "rotated": rotate,
                "host_key": presented.fingerprint,
                "host_key_trusted_by": trusted_by,
            },
            warnings=warnings,
        )

    @contextmanager
    def _verified_session(self, peer, user, port, pinned, verification):
        """An SFTP session as ``user``, opened only once the slave's host key is trusted.

        Yields ``(sftp, presented key, how it was trusted)``. The order is the
        defence: key exchange, host key check (:meth:`_trust_presented`, which
        raises on anything unverified), and only then the password is read
        and sent.
        """
        import paramiko

        timeout = self._connect_timeout()
        try:
            sock = socket.create_connection((peer, port), timeout=timeout)
        except OSError as exc:
            raise PeerUnreachable(f"cannot reach the slave {peer}:{port} over ssh: {exc}") from None
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = transport.auth_timeout = timeout
            _prefer_key_types(transport, [key.key_type for key in pinned])
            try:
                transport.start_client(timeout=timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise PluginError(f"ssh to the slave {peer}:{port} failed: {exc}") from None
            server_key = transport.get_remote_server_key()
            presented = hostkeys.HostKey(server_key.get_name(), server_key.asbytes())
            trusted_by = self._trust_presented(peer, presented, pinned, verification)
            password = trust.read_password(self.config, user, peer)
            try:
                transport.auth_password(user, password)
            except paramiko.AuthenticationException:
                raise PluginError(f"the slave {peer} refused the password of {user}") from None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise PluginError(f"ssh to the slave {peer} failed: {exc}") from None
            sftp = paramiko.SFTPClient.from_transport(transport)
            yield sftp, presented, trusted_by
        finally:
            transport.close()

    def _trust_presented(self, peer, presented, pinned, verification: PeerVerification) -> str:
        """How ``presented`` is trusted (``pin``, ``fingerprint``, ``terminal``, ``accept-new``), or PluginError."""
        if pinned and presented not in pinned:
            raise PluginError(self._host_key_changed(peer, "during init", pinned, str(presented)))
        expected = verification.fingerprint and hostkeys.parse_fingerprint(verification.fingerprint)
        if expected and presented.fingerprint != expected:
            raise PluginError(
                f"host key of the slave {peer} does not match the fingerprint given: expected {expected}, "
                f"presented {presented}. Refusing before any password is sent: someone may be impersonating "
                "the slave, or the fingerprint was mistyped (check it on the slave with `wazo-ha sync host-key show`)."
            )
        if pinned:
            return "pin"
        if expected:
            return "fingerprint"
        if verification.accept_new:
            self.log.warning(
                "accepting the host key %s of the slave %s without verification (--accept-new)", presented, peer
            )
            return "accept-new"
        if verification.confirm is not None:
            question = (
                f"The slave {peer} presents the ssh host key {presented}.\n"
                "Compare it with `wazo-ha sync host-key show` (or `ssh-keygen -lf` of its host key) on the slave.\n"
                "Type yes if it is the same, to pin it and send the password: "
            )
            if verification.confirm(question):
                return "terminal"
            raise PluginError(f"host key {presented.fingerprint} of the slave {peer} not confirmed: nothing sent")
        raise PluginError(
            f"the slave {peer} presents the host key {presented}, which nothing verifies: "
            "refusing before any password is sent. Check that fingerprint on the slave "
            "(`wazo-ha sync host-key show`), then either pin the slave's keys "
            "(`ssh root@SLAVE wazo-ha sync host-key show | wazo-ha sync host-key pin`), "
            "or pass it (`wazo-ha sync init --host-key-fingerprint SHA256:…`), "
            "or run `wazo-ha sync init` on a terminal to confirm it, "
            "or accept it unverified with `--accept-new`"
        )

    def _install(self, sftp, line: str, retired: set[str]) -> bool:
        """Put the receiver and our authorized_keys line on the slave; False when both were already there."""
        changed = _put_if_different(sftp, self.config["receiver_path"], RECEIVER_SOURCE.read_bytes(), 0o755)
        authorized = self.config["authorized_keys_file"]
        current = _read_remote(sftp, authorized)
        text = current.decode() if current is not None else ""
        merged = trust.merge_authorized_keys(text, line, retired)
        if merged != text:
            _put_if_different(sftp, authorized, merged.encode(), 0o600, parent_mode=0o700)
            changed = True
        return changed

    def _forced_command(self) -> str:
        settings = self.context.settings
        tree = settings.get("file_sync.tenant_sounds_dir")
        return trust.forced_command(
            self.config["remote_python"],
            self.config["receiver_path"],
            self.config["remote_root"],
            list(settings.get("file_sync.directories"))
            + ([settings.get("copy_back.voicemail_dir")] if settings.get("file_sync.voicemail") else []),
            [tree] if tree else [],
            list(settings.get("file_sync.tenant_sounds_excluded")),
            copy_back_directories(settings),
            list(settings.get("copy_back.tenant_sounds_names")) if tree else [],
        )

    def _from_addresses(self, peer: str, port: int) -> list[str]:
        configured = self.config["from_addresses"]
        if configured:
            if not isinstance(configured, list):
                raise PluginError(f"plugin_config.rsync.from_addresses must be a list, got {trust.shown(configured)}")
            return [trust.from_address(address) for address in configured]
        return [trust.from_address(trust.source_address(peer, port).partition("%")[0])]

    def _host_key_changed(self, peer: str, when: str, pinned: list, presented: str | None) -> str:
        known_hosts = self._local_path("known_hosts_file")
        return (
            f"host key of the slave {peer} does not match the key pinned in {known_hosts} ({when}): "
            f"pinned {hostkeys.describe(pinned)}, presented {presented or 'unknown'}. Refusing. "
            "If the slave was reinstalled, check its new key on the slave and pin it again "
            "(`ssh root@SLAVE wazo-ha sync host-key show | wazo-ha sync host-key pin --replace`); "
            "otherwise someone may be impersonating the slave."
        )

    # --- host keys --------------------------------------------------------------------

    def show_host_keys(self) -> str:
        """This node's sshd host keys (``host_key_files``), one ``type base64 SHA256:…`` line each."""
        files = self.config["host_key_files"]
        if not isinstance(files, list) or not files:
            raise PluginError(
                f"plugin_config.rsync.host_key_files must be a list of paths, got {hostkeys.shorten(files)}"
            )
        paths = []
        for value in files:
            if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
                raise PluginError(
                    f"plugin_config.rsync.host_key_files: {hostkeys.shorten(value)} is not an absolute path"
                )
            paths.append(self.context.settings.resolve(value))
        found = hostkeys.read_host_key_files(paths)
        if not found:
            raise PluginError(
                "no sshd host key found on this node: looked for "
                + ", ".join(str(path) for path in paths)
                + " (plugin_config.rsync.host_key_files)"
            )
        return hostkeys.show_text(found, socket.gethostname())

    def pin_host_keys(self, peer: str, text: str, *, replace: bool = False) -> OperationResult:
        """Pin the keys in ``text`` (``show_host_keys`` of the slave) for ``peer``, before ``init``.

        Bad text is refused whole. Keys sharing nothing with an existing pin
        are refused (old and new fingerprints named) unless ``replace``.
        """
        keys = hostkeys.parse_key_text(text, "host keys given")
        known_hosts = self._local_path("known_hosts_file")
        pattern = trust.host_pattern(peer, self._port())
        pinned = hostkeys.pinned_keys(known_hosts, pattern)
        if pinned and not set(pinned) & set(keys) and not replace:
            raise PluginError(
                f"the host key of the slave {peer} pinned in {known_hosts} is {hostkeys.describe(pinned)}; "
                f"the keys given are {hostkeys.describe(keys)}: refusing. If the slave was reinstalled and you "
                "checked its new keys on it, pin them with --replace."
            )
        changed = hostkeys.pin_keys(known_hosts, pattern, keys)
        message = f"pinned {hostkeys.describe(keys)} for {pattern}" if changed else "already pinned, nothing changed"
        if changed:
            self.log.info("host keys of the slave %s pinned in %s: %s", peer, known_hosts, hostkeys.describe(keys))
        return OperationResult(
            "synced" if changed else "skipped",
            message,
            {
                "known_hosts": str(known_hosts),
                "host_keys": [key.fingerprint for key in keys],
                "replaced": bool(pinned) and changed,
            },
        )

    # --- sync ------------------------------------------------------------------------

    def sync(
        self,
        peer: str,
        paths: Sequence[str],
        *,
        progress: ProgressCallback = no_progress,
        by_content: Sequence[str] = (),
    ) -> OperationResult:
        """See :meth:`FileSyncBackend.sync`; ``by_content`` paths go in a second rsync run with ``--checksum``."""
        key_file, known_hosts, port, pinned = self._ready(peer)
        root = str(self.context.settings.root).rstrip("/")
        groups: dict[bool, list[str]] = {False: [], True: []}
        warnings: list[str] = []
        for path in paths:
            local = self.context.settings.resolve(path)
            if not local.is_dir():
                warnings.append(f"skipped {path}: no such directory on this node ({local})")
                continue
            # "/./" tells rsync -R where the mirrored relative path starts.
            groups[path in by_content].append(f"{root}/./{str(path).strip('/')}")
        sources = groups[False] + groups[True]
        figures: dict = {"directories": len(sources), "skipped": len(paths) - len(sources)}
        for warning in warnings:
            self.log.warning("%s", warning, extra=REPORTED)
        if not sources:
            return OperationResult("skipped", "no directory to sync", figures, warnings)
        ssh = transfer.ssh_command(str(key_file), str(known_hosts), port, self._connect_timeout())
        host = f"[{peer}]" if ":" in peer else peer
        remote_root = self.config["remote_root"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(key_file.parent)}
        for checksum, group in groups.items():
            if not group:
                continue
            command = transfer.rsync_command(
                ssh,
                group,
                f"{self._user()}@{host}:{remote_root}",
                io_timeout=int(self.config["io_timeout"]),
                bandwidth_limit=self.config["bandwidth_limit"],
                progress=progress is not no_progress,
                checksum=checksum,
            )
            result = transfer.run_rsync(command, progress, env)
            for key, value in result.figures.items():
                figures[key] = figures.get(key, 0) + value
            figures["rsync_exit"] = max(figures.get("rsync_exit", 0), result.exit_code)
            if result.exit_code in transfer.PARTIAL:
                meaning = transfer.EXIT_MESSAGES[result.exit_code]
                detail = "; ".join(result.errors[-5:])
                warnings.append(f"rsync exit {result.exit_code}, {meaning}" + (f": {detail}" if detail else ""))
                self.log.warning("%s", warnings[-1], extra=REPORTED)
            elif result.exit_code != 0:
                raise transfer.explain_failure(
                    result.exit_code, result.errors, peer, str(known_hosts), [key.fingerprint for key in pinned]
                )
        message = (
            f"{figures.get('files_transferred', 0)} files, {figures.get('bytes_transferred', 0)} bytes transferred, "
            f"{figures.get('files_deleted', 0)} deleted"
        )
        return OperationResult("synced", message, figures, warnings)

    # --- copy-back: the master pulls (read-only sender mode of the same forced command) --------

    def pull(
        self,
        peer: str,
        paths: Sequence[str],
        staging: Path,
        *,
        progress: ProgressCallback = no_progress,
        mirror: bool = False,
    ) -> OperationResult:
        """Copy each of ``paths`` (absolute node paths) from the slave into ``staging/<path>``.

        Never deletes on the slave; in ``staging`` only with ``mirror`` (``--delete-delay``, local).

        The slave's forced command lets this key read exactly the copy-back
        directories (``receiver.py``'s sender mode). A path missing on the
        slave is listed in ``figures["missing"]`` (nothing was recorded there); a
        directory or file the slave's sender may not read (permission denied) in
        ``figures["unreadable"]`` (node paths) with a warning naming it, the rest
        being copied. Raises :class:`NotInitialised` without a key or pin, :class:`PluginError`
        when the transfer fails (an older key line without the copy-back
        directories: run ``wazo-ha sync init`` again).
        """
        key_file, known_hosts, port, pinned = self._ready(peer)
        host = f"[{peer}]" if ":" in peer else peer
        remote_root = self.config["remote_root"].rstrip("/")
        sources = [f"{self._user()}@{host}:{remote_root}/./{str(path).strip('/')}" for path in paths]
        if not sources:
            return OperationResult("skipped", "no directory to copy back", {"directories": 0})
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        ssh = transfer.ssh_command(str(key_file), str(known_hosts), port, self._connect_timeout())
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(key_file.parent)}
        # A mirror pulls each directory on its own: rsync skips every deletion of a run in which one
        # source is missing, and a directory missing on the slave is then emptied here instead.
        groups = (
            [[(path, source)] for path, source in zip(paths, sources, strict=True)]
            if mirror
            else [list(zip(paths, sources, strict=True))]
        )
        figures: dict = {"directories": len(sources)}
        warnings: list[str] = []
        for group in groups:
            command = transfer.pull_command(
                ssh,
                [source for _, source in group],
                f"{staging}/",
                io_timeout=int(self.config["io_timeout"]),
                bandwidth_limit=self.config["bandwidth_limit"],
                mirror=mirror,
            )
            result = transfer.run_rsync(command, progress, env)
            for key, value in result.figures.items():
                figures[key] = figures.get(key, 0) + value
            figures["rsync_exit"] = max(figures.get("rsync_exit", 0), result.exit_code)
            unreadable, rest = _unreadable_on_slave(result.errors, remote_root)
            if result.exit_code == 23 and unreadable and not _real_errors(rest):
                # Permission denied on the slave: the rest of the group was copied; those paths were not,
                # and rsync deleted nothing in the staged copy (its "IO error" rule). The engine merges
                # nothing from under them and the copy-back stays owed.
                figures.setdefault("unreadable", []).extend(unreadable)
                figures.setdefault("missing", []).extend(
                    f"not on the slave (nothing recorded there): {line}" for line in rest if _missing(line)
                )
                warnings.extend(
                    f"cannot read {path} on the slave (permission denied): not copied back; fix its permissions "
                    "there, the next run takes it"
                    for path in unreadable
                )
            elif result.exit_code == 23 and _only_missing_sources(result.errors):
                # Nothing recorded there: a figure, not a warning (a warning makes the copy-back partial).
                figures.setdefault("missing", []).extend(
                    f"not on the slave (nothing recorded there): {line}"
                    for line in result.errors[:20]
                    if "No such file or directory" in line
                )
                if mirror:
                    shutil.rmtree(staging / str(group[0][0]).strip("/"), ignore_errors=True)
            elif result.exit_code == 24:
                warnings.append("some files vanished on the slave during the copy; the next run takes the rest")
            elif result.exit_code != 0:
                raise transfer.explain_failure(
                    result.exit_code, result.errors, peer, str(known_hosts), [key.fingerprint for key in pinned]
                )
        message = f"{figures.get('files_transferred', 0)} files pulled, {figures.get('bytes_transferred', 0)} bytes"
        return OperationResult("synced", message, figures, warnings)

    def _ready(self, peer: str):
        """The key, the pinned host keys and the port for a transfer with ``peer``; raises what stops one."""
        key_file = self._local_path("key_file")
        known_hosts = self._local_path("known_hosts_file")
        port = self._port()
        if not key_file.exists():
            raise NotInitialised(f"no sync key at {key_file}: run `wazo-ha sync init` first")
        pinned = hostkeys.pinned_keys(known_hosts, trust.host_pattern(peer, port))
        if not pinned:
            raise NotInitialised(f"the slave's host key is not pinned in {known_hosts}: run `wazo-ha sync init` first")
        for key, path in (("key_file", key_file), ("known_hosts_file", known_hosts)):
            if any(character.isspace() or character in "'\"\\" for character in str(path)):
                raise PluginError(f"plugin_config.rsync.{key} resolves to {str(path)!r}: no spaces or quotes allowed")
        return key_file, known_hosts, port, pinned

    # --- forgetting the trust (leaving the role; edit step "file sync trust rsync") -------------

    def trust_files(self, role: str) -> list[Path]:
        if role == "slave":
            # A symlinked authorized_keys is edited where it points (what sshd reads); the link stays.
            authorized = Path(os.path.realpath(self._local_path("authorized_keys_file")))
            return [authorized, self._local_path("receiver_path")]
        if role == "master":
            key_file = self._local_path("key_file")
            return [key_file, key_file.with_name(key_file.name + ".pub"), self._local_path("known_hosts_file")]
        return []

    def forget_trust(self, role: str, peer: str | None) -> list[str]:
        """Former slave: our lines in authorized_keys and the receiver. Former master: key pair and pin.

        On the slave, ``authorized_keys_file`` and ``receiver_path`` are this node's own
        files (resolved under settings ``root``; on a real slave ``remote_root`` is ``/``).
        Other authorized_keys lines are kept byte for byte, mode and owner too.
        """
        removed: list[str] = []
        try:
            if role == "slave":
                authorized, receiver = self.trust_files("slave")
                if _rewrite_without(authorized, trust.without_our_lines):
                    removed.append(f"{authorized}: the master's sync key")
                if _remove(receiver):
                    removed.append(str(receiver))
            elif role == "master":
                key_file, public, known_hosts = self.trust_files("master")
                removed += [str(path) for path in (key_file, public) if _remove(path)]
                if peer:
                    pattern = trust.host_pattern(peer, self._port())
                    if _rewrite_without(known_hosts, lambda content: trust.without_pins(content, pattern)):
                        removed.append(f"{known_hosts}: the host key pinned for {pattern}")
        except OSError as exc:
            raise PluginError(f"cannot forget the file-sync trust ({role}): {exc}") from None
        return removed

    def doctor_checks(self, node_type: str, peer: str | None, preflight: bool = False) -> list:
        """``wazo-ha doctor``: the slave's sshd, TCP to it, the key and its restrictions (see :mod:`.doctor`)."""
        return rsync_checks(self, node_type, peer, preflight)

    # --- settings --------------------------------------------------------------------

    def _local_path(self, key: str) -> Path:
        value = self.config[key]
        if not isinstance(value, str) or not value.startswith("/"):
            raise PluginError(f"plugin_config.rsync.{key} must be an absolute path, got {value!r}")
        return self.context.settings.resolve(value)

    def _user(self) -> str:
        user = self.config["user"]
        if not isinstance(user, str) or not trust.SAFE_ARGUMENT.fullmatch(user) or user.startswith("-"):
            raise PluginError(f"plugin_config.rsync.user must be a user name, got {trust.shown(user)}")
        return user

    def _port(self) -> int:
        port = self.config["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise PluginError(f"plugin_config.rsync.port must be a TCP port number, got {port!r}")
        return port

    def _connect_timeout(self) -> float:
        return float(self.context.settings.get("timeouts.connect"))


#: The sender's words for a path it may not read (rsync 3.2: opendir of a directory, open of a file).
_DENIED = re.compile(
    r'rsync: \[sender\] (?:opendir "(.+)" failed|send_files failed to open "(.+)"): Permission denied \(13\)'
)


def _unreadable_on_slave(errors: list[str], remote_root: str) -> tuple[list[str], list[str]]:
    """The node paths rsync's sender reported as permission denied (under ``remote_root``), and the other lines."""
    unreadable, rest = [], []
    prefix = remote_root.rstrip("/") + "/"
    for line in errors:
        found = _DENIED.fullmatch(line.strip())
        path = (found.group(1) or found.group(2)) if found else None
        if path is not None and path.startswith(prefix):
            unreadable.append("/" + path[len(prefix) :])
        else:
            rest.append(line)
    return unreadable, rest


def _missing(line: str) -> bool:
    return "No such file or directory" in line


def _real_errors(lines: list[str]) -> list[str]:
    """Lines that say something else went wrong (not rsync's summary, its skipped-deletion note or a missing source)."""
    return [
        line
        for line in lines
        if not line.startswith("rsync error:")
        and "IO error encountered -- skipping file deletion" not in line
        and not _missing(line)
        and "write error: Broken pipe" not in line
    ]


def _only_missing_sources(errors: list[str]) -> bool:
    """rsync's stderr says only that sources are missing on the slave (and the broken pipe that may follow)."""
    missing = [line for line in errors if "No such file or directory" in line]
    other = [line for line in errors if line not in missing and not line.startswith("rsync error:")]
    return bool(missing) and all("write error: Broken pipe" in line for line in other)


def _prefer_key_types(transport: paramiko.Transport, pinned_types: list[str]) -> None:
    """Ask first for the host key types we pinned (as OpenSSH does), so the slave presents a key we can check."""
    options = transport.get_security_options()
    wanted = []
    for key_type in pinned_types:
        wanted += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if key_type == "ssh-rsa" else [key_type]
    first = [name for name in dict.fromkeys(wanted) if name in options.key_types]
    options.key_types = first + [name for name in options.key_types if name not in first]


def _rewrite_without(path: Path, strip) -> bool:
    """Rewrite ``path`` with ``strip(content)`` (→ ``(bytes, removed count)``), keeping mode and owner.

    Returns whether something was removed. A file left with nothing but blank
    space is kept (empty), not removed: its existence is the operator's choice.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return False
    kept, removed = strip(content)
    if not removed:
        return False
    info = path.stat()
    trust.write_private(path, kept, stat.S_IMODE(info.st_mode), owner=(info.st_uid, info.st_gid))
    return True


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _read_remote(sftp, path: str) -> bytes | None:
    try:
        with sftp.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PluginError(f"cannot read {path} on the slave: {exc}") from None


def _put_if_different(sftp, path: str, content: bytes, mode: int, parent_mode: int = 0o755) -> bool:
    """Write ``path`` on the slave atomically (temp file + rename) unless it already holds ``content``."""
    if _read_remote(sftp, path) == content and stat.S_IMODE(sftp.stat(path).st_mode) == mode:
        return False
    parent = posixpath.dirname(path)
    _makedirs_remote(sftp, parent, parent_mode)
    scratch = f"{parent}/.{posixpath.basename(path)}.wazo-ha-tmp"
    try:
        with sftp.open(scratch, "wb") as handle:
            handle.chmod(mode)
            handle.write(content)
        sftp.posix_rename(scratch, path)
    except OSError as exc:
        raise PluginError(f"cannot write {path} on the slave: {exc}") from None
    return True


def _makedirs_remote(sftp, directory: str, mode: int) -> None:
    missing = []
    while directory not in ("", "/"):
        try:
            sftp.stat(directory)
            break
        except FileNotFoundError:
            missing.append(directory)
            directory = posixpath.dirname(directory)
    for path in reversed(missing):
        try:
            sftp.mkdir(path, mode)
        except OSError as exc:
            raise PluginError(f"cannot create {path} on the slave: {exc}") from None
