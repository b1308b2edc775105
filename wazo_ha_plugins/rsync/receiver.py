"""The forced command of the file-sync key, run by sshd on the slave.

``wazo-ha sync init`` copies this file to the slave and installs the master's
key in ``authorized_keys`` with ``restrict``, ``from="<master>"`` and
``command="python3 -I -S <this file> --root R --allow DIR ... --allow-tree DIR
--protect NAME ..."``. Whatever the key holder asks for, this program runs
instead; it lets through exactly one thing: an rsync server that *receives*
into ``R`` with the options the master's sync uses. Anything else (a shell,
``id``, an rsync sender that would read files, another destination, an
unknown option) is refused with a one-line message and exit 1.

The rsync it runs cannot write outside the allowed directories even if the
sender is malicious (crafted file lists, symlinks that point elsewhere): it
runs in a private mount namespace in which every mount is read-only except a
bind mount of each allowed directory (``--allow``, and ``--allow-tree`` for the
tenant sound directories, inside which the existing ``--protect`` directories
such as ``monitor`` and ``recording`` are read-only too). The kernel, not
rsync, enforces the boundary.

This file must stay standalone: Python 3 standard library only, because it
runs on the slave with the system ``python3`` and nothing else.
"""

import ctypes
import os
import sys

PROGRAM = "wazo-ha-rsync-receiver"
RSYNC = "/usr/bin/rsync"

# Checked with sets of characters rather than regular expressions: importing re
# costs this short-lived program (started on every sync) a third of its start-up.
DIGITS = frozenset("0123456789")
LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
PATH_CHARACTERS = LETTERS | DIGITS | frozenset("._/@+:-")
NAME_CHARACTERS = LETTERS | DIGITS | frozenset("._-")
# What the master's rsync client sends: "-logDtprRe.iLsfxCIvu" and a few long options.
SHORT_LETTERS = frozenset("logDtprRvzcHAXSWxn")
SERVER_FLAGS = LETTERS | frozenset(".")  # after the "e": the client's capability letters
LONG_FLAGS = frozenset(
    ("--delete-after", "--delete-delay", "--no-implied-dirs", "--stats", "--numeric-ids", "--partial")
)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
CLONE_NEWNS = 0x00020000
# statvfs f_flag bits → mount flags to keep when remounting (dropping them may be refused).
KEPT_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)


class Refused(Exception):
    pass


def _number(text, most_digits):
    return 0 < len(text) <= most_digits and set(text) <= DIGITS


def is_short_cluster(option):
    """``-`` then letters of SHORT_LETTERS, optionally ``e`` and the client's capability letters."""
    if not option.startswith("-") or option.startswith("--"):
        return False
    letters, has_e, capabilities = option[1:].partition("e")
    return bool(letters) and set(letters) <= SHORT_LETTERS and (not has_e or set(capabilities) <= SERVER_FLAGS)


def is_long_option(option):
    """One of LONG_FLAGS, ``--timeout=<1-6 digits>`` or ``--bwlimit=<1-9 digits>[KMkm]``."""
    if option in LONG_FLAGS:
        return True
    name, has_value, value = option.partition("=")
    if not has_value:
        return False
    if name == "--timeout":
        return _number(value, 6)
    if name == "--bwlimit":
        return _number(value[:-1] if value[-1:] in ("K", "M", "k", "m") else value, 9)
    return False


def is_safe_path(value):
    """An absolute path of plain characters (no space, quote, newline or shell character)."""
    return value.startswith("/") and set(value) <= PATH_CHARACTERS


def parse_policy(argv):
    """``--root R --allow D ... --allow-tree D ... --protect NAME ...`` → dict."""
    policy = {"root": None, "allow": [], "allow_tree": [], "protect": []}
    keys = {"--root": "root", "--allow": "allow", "--allow-tree": "allow_tree", "--protect": "protect"}
    if len(argv) % 2:
        raise Refused("bad forced-command arguments in authorized_keys")
    for flag, value in zip(argv[0::2], argv[1::2], strict=True):
        key = keys.get(flag)
        if key is None:
            raise Refused(f"unknown forced-command argument {flag!r} in authorized_keys")
        if key == "protect":
            if not value or not set(value) <= NAME_CHARACTERS or value in (".", ".."):
                raise Refused(f"bad --protect name {value!r}")
        elif not is_safe_path(value) or "/../" in value + "/" or "/./" in value + "/":
            raise Refused(f"bad path {value!r} in authorized_keys")
        if key == "root":
            policy["root"] = value
        else:
            policy[key].append(value)
    if policy["root"] is None:
        raise Refused("--root missing from the forced command in authorized_keys")
    return policy


def under_root(root, path):
    return os.path.normpath(root.rstrip("/") + "/" + path.lstrip("/"))


def check_request(command, root):
    """Return the rsync server options asked for, or raise :class:`Refused`."""
    if not command:
        raise Refused("this key only accepts the master's rsync; no shell")
    words = command.split()
    if words[:2] != ["rsync", "--server"]:
        raise Refused(f"this key only accepts the master's rsync, not {words[0][:40]!r}")
    if "--sender" in words:
        raise Refused("reading from this node is not allowed; this key can only receive files")
    if len(words) < 5 or words[-2] != ".":
        raise Refused("unexpected rsync command shape")
    options = words[2:-2]
    for option in options:
        if not (is_short_cluster(option) or is_long_option(option)):
            raise Refused(f"rsync option {option[:40]!r} is not allowed")
    if not any(
        option.startswith("-") and not option.startswith("--") and "R" in option.split("e")[0] for option in options
    ):
        raise Refused("rsync must run with --relative")
    destination = words[-1]
    if os.path.normpath(destination) != os.path.normpath(root):
        raise Refused(f"destination {destination[:80]!r} is not the sync root {root!r}")
    return options


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    return libc


def _mount(libc, source, target, flags):
    if libc.mount(source and source.encode(), target.encode(), None, flags, None) != 0:
        error = ctypes.get_errno()
        raise Refused(f"cannot confine the transfer: mount {target!r}: {os.strerror(error)}")


def unescape_mount_point(field):
    """A mountinfo path: the kernel writes space, tab, newline and backslash as ``\\ooo`` (octal)."""
    first, *rest = field.split("\\")
    text = [first]
    for part in rest:
        code = part[:3]
        if len(code) == 3 and set(code) <= frozenset("01234567"):
            text.append(chr(int(code, 8)) + part[3:])
        else:
            text.append("\\" + part)
    return "".join(text)


def _mount_points():
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return [unescape_mount_point(line.split(" ")[4]) for line in mountinfo]


def _real_dir(path):
    """``path`` if it is a directory reached without symlinks, else ``None``."""
    return path if os.path.isdir(path) and os.path.realpath(path) == path else None


def confine(policy):
    """Enter a private mount namespace where only the allowed directories are writable."""
    root = policy["root"]
    writable = [under_root(root, d) for d in policy["allow"] + policy["allow_tree"]]
    for directory in writable:
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if _real_dir(directory) is None:
            raise Refused(f"allowed directory {directory!r} is reached through a symlink; refusing")
    protected = []
    for tree in policy["allow_tree"]:
        tree = under_root(root, tree)
        for tenant in sorted(os.listdir(tree)):
            for name in policy["protect"]:
                candidate = _real_dir(os.path.join(tree, tenant, name))
                if candidate:
                    protected.append(candidate)
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        raise Refused(f"cannot confine the transfer: unshare: {os.strerror(ctypes.get_errno())}")
    _mount(libc, None, "/", MS_REC | MS_PRIVATE)
    for directory in writable + protected:
        _mount(libc, directory, directory, MS_BIND)
    # rsync may open /dev/null for writing: that one device node stays writable.
    _mount(libc, "/dev/null", "/dev/null", MS_BIND)
    keep_writable = {*writable, "/dev/null"}
    for point in dict.fromkeys(_mount_points()):
        if point in keep_writable or not os.path.exists(point):
            continue
        flags = os.statvfs(point).f_flag
        if flags & os.ST_RDONLY:
            continue
        kept = sum(mount_flag for st_flag, mount_flag in KEPT_FLAGS if flags & st_flag)
        _mount(libc, None, point, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def main(argv):
    try:
        policy = parse_policy(argv)
        options = check_request(os.environ.get("SSH_ORIGINAL_COMMAND", ""), policy["root"])
        confine(policy)
    except Refused as exc:
        sys.stderr.write(f"{PROGRAM}: refused: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"{PROGRAM}: refused: {exc}\n")
        return 1
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    os.execve(RSYNC, [RSYNC, "--server", *options, ".", policy["root"]], env)  # noqa: S606 (no shell, on purpose)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
