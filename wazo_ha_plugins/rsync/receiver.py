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

Nor can the key create anything that gives more rights than the file's owner
has: the options that would (``-D``, ``-A``, ``-X``, ``--super``…) are
refused, the receiving rsync is always run with :data:`FORCED_OPTIONS`
(s-bits stripped from every mode it receives, no device, special file, ACL
or extended attribute), and the kernel enforces the same before rsync starts
(:func:`harden`): the writable mounts are ``nosuid,nodev``, every capability
but :data:`KEPT_CAPABILITIES` leaves the bounding set, and a seccomp filter
fails any chmod or file creation with a setuid/setgid bit, any mknod and any
setxattr (file capabilities and ACLs are extended attributes).

The allowed directories that do not exist yet are created for their bind
mounts; the confined rsync runs in a child process, and once it has ended the
parent removes those it created that are still empty, so a directory the
master skipped (missing there) leaves no empty directory on the slave.

**Copy-back (read-only sender mode).** With ``--send DIR`` (and
``--send-in-tree NAME`` for ``<allow-tree>/<tenant>/NAME``, e.g. the tenants'
``monitor`` directories) in the forced command, the same key may also ask for
``rsync --server --sender`` of exactly those directories, and nothing else:
each source must be ``<root>/./<a send directory>`` reached without a symlink,
the options are the same allow-list (none that follows symlinks or removes
source files), and the sending rsync runs in a mount namespace where every
mount is read-only, with the same capabilities and seccomp filter. The master
pulls what the slave recorded while serving; the slave gains no access to the
master.

This file must stay standalone: Python 3 standard library only, because it
runs on the slave with the system ``python3`` and nothing else.
"""

import ctypes
import os
import struct
import sys

PROGRAM = "wazo-ha-rsync-receiver"
RSYNC = "/usr/bin/rsync"

# Checked with sets of characters rather than regular expressions: importing re
# costs this short-lived program (started on every sync) a third of its start-up.
DIGITS = frozenset("0123456789")
LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
PATH_CHARACTERS = LETTERS | DIGITS | frozenset("._/@+:-")
NAME_CHARACTERS = LETTERS | DIGITS | frozenset("._-")
# What the master's rsync client (rsync -rlptgoR) sends: "-logtprRe.iLsfxCIvu" and a few long options.
SHORT_LETTERS = frozenset("logtprRvzcHSWxn")
SERVER_FLAGS = LETTERS | frozenset(".")  # after the "e": the client's capability letters
LONG_FLAGS = frozenset(
    ("--delete-after", "--delete-delay", "--no-implied-dirs", "--stats", "--numeric-ids", "--partial")
)
WHY_FORBIDDEN = "this key may only create plain files, directories and symlinks (sync with rsync -rlptgo, not -a)"
#: Short letters and long options refused by name: each would let the key create more than plain files.
FORBIDDEN_LETTERS = {
    "D": "-D (device and special files)",
    "A": "-A (ACLs)",
    "X": "-X (extended attributes, file capabilities included)",
}
FORBIDDEN_LONG = {
    "--devices": "--devices (device files)",
    "--specials": "--specials (FIFOs and sockets)",
    "--write-devices": "--write-devices (writing into device files)",
    "--acls": "--acls (ACLs)",
    "--xattrs": "--xattrs (extended attributes)",
    "--super": "--super (root-only attributes)",
    "--fake-super": "--fake-super (attributes kept in extended attributes)",
    "--chmod": "--chmod (modes are the slave's to force)",
}
#: Appended to the client's options, so they win: whatever the sender's file list says, no setuid or
#: setgid bit (rsync applies a server-side --chmod to every mode it receives), no device or special
#: file, no ACL, no extended attribute.
FORCED_OPTIONS = ("--chmod=ugo-s", "--no-devices", "--no-specials", "--no-acls", "--no-xattrs")

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


def forbidden_option(option):
    """The name of the dangerous option ``option`` is or holds (see FORBIDDEN_*), else ``None``."""
    if option.startswith("--"):
        return FORBIDDEN_LONG.get(option.partition("=")[0])
    if option.startswith("-"):
        letters = option[1:].partition("e")[0]
        return next((FORBIDDEN_LETTERS[letter] for letter in letters if letter in FORBIDDEN_LETTERS), None)
    return None


def is_safe_path(value):
    """An absolute path of plain characters (no space, quote, newline or shell character)."""
    return value.startswith("/") and set(value) <= PATH_CHARACTERS


def parse_policy(argv):
    """``--root R --allow D ... --allow-tree D ... --protect NAME ... --send D ... --send-in-tree NAME ...`` → dict."""
    policy = {"root": None, "allow": [], "allow_tree": [], "protect": [], "send": [], "send_in_tree": []}
    keys = {
        "--root": "root",
        "--allow": "allow",
        "--allow-tree": "allow_tree",
        "--protect": "protect",
        "--send": "send",
        "--send-in-tree": "send_in_tree",
    }
    if len(argv) % 2:
        raise Refused("bad forced-command arguments in authorized_keys")
    for flag, value in zip(argv[0::2], argv[1::2], strict=True):
        key = keys.get(flag)
        if key is None:
            raise Refused(f"unknown forced-command argument {flag!r} in authorized_keys")
        if key in ("protect", "send_in_tree"):
            if not value or not set(value) <= NAME_CHARACTERS or value in (".", ".."):
                raise Refused(f"bad --{key.replace('_', '-')} name {value!r}")
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


def check_options(options):
    for option in options:
        forbidden = forbidden_option(option)
        if forbidden:
            raise Refused(f"rsync option {forbidden} is not allowed: {WHY_FORBIDDEN}")
        if not (is_short_cluster(option) or is_long_option(option)):
            raise Refused(f"rsync option {option[:40]!r} is not allowed")


def check_request(command, root):
    """Return the rsync server options asked for, or raise :class:`Refused`."""
    words = command.split()
    if not words:
        raise Refused("this key only accepts the master's rsync; no shell")
    if words[:2] != ["rsync", "--server"]:
        raise Refused(f"this key only accepts the master's rsync, not {words[0][:40]!r}")
    if "--sender" in words:
        raise Refused("reading from this node is not allowed; this key can only receive files")
    if len(words) < 5 or words[-2] != ".":
        raise Refused("unexpected rsync command shape")
    options = words[2:-2]
    check_options(options)
    if not any(
        option.startswith("-") and not option.startswith("--") and "R" in option.split("e")[0] for option in options
    ):
        raise Refused("rsync must run with --relative")
    destination = words[-1]
    if os.path.normpath(destination) != os.path.normpath(root):
        raise Refused(f"destination {destination[:80]!r} is not the sync root {root!r}")
    return options


def check_send_request(command, policy):
    """``rsync --server --sender OPTIONS . SOURCE...`` of copy-back directories only: ``(options, sources)``."""
    words = command.split()
    if words[:3] != ["rsync", "--server", "--sender"]:
        raise Refused("unexpected rsync command shape")
    if not policy["send"] and not policy["send_in_tree"]:
        raise Refused("reading from this node is not allowed; this key can only receive files")
    if "." not in words[3:]:
        raise Refused("unexpected rsync command shape")
    dot = words.index(".", 3)
    options, sources = words[3:dot], words[dot + 1 :]
    if not sources:
        raise Refused("unexpected rsync command shape: no source")
    check_options(options)
    for source in sources:
        check_send_source(source, policy)
    return options, sources


def check_send_source(source, policy):
    """``<root>/./<dir>`` where ``<dir>`` is a ``--send`` directory or ``<tree>/<tenant>/<--send-in-tree name>``."""
    root = os.path.normpath(policy["root"])
    prefix, marker, relative = source.partition("/./")
    relative = relative.rstrip("/")
    shown = repr(source[:80])
    if not marker or not is_safe_path(source) or os.path.normpath(prefix or "/") != root or not relative:
        raise Refused(f"source {shown} is not <sync root>/./<copy-back directory>")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise Refused(f"source {shown} is not a plain path")
    path = "/" + relative
    allowed = path in [os.path.normpath(d) for d in policy["send"]]
    for tree in policy["allow_tree"]:
        tree_parts = os.path.normpath(tree).strip("/").split("/")
        if (
            len(parts) == len(tree_parts) + 2
            and parts[: len(tree_parts)] == tree_parts
            and set(parts[-2]) <= NAME_CHARACTERS
            and parts[-1] in policy["send_in_tree"]
        ):
            allowed = True
    if not allowed:
        raise Refused(f"source {shown} is not a copy-back directory of this key")
    local = under_root(root, relative)
    if os.path.lexists(local) and os.path.realpath(local) != local:
        raise Refused(f"source {shown} is reached through a symlink; refusing")


def send(policy, options, sources):
    """In this process: every mount read-only, harden, then become the sending rsync; never returns."""
    read_only = {"root": policy["root"], "allow": [], "allow_tree": [], "protect": []}
    become_rsync(read_only, [RSYNC, "--server", "--sender", *options, ".", *sources])


def become_rsync(policy, argv):
    """In this process: confine to ``policy`` (its writable mounts), harden, then exec ``argv``; never returns.

    Exits 1 when the confinement or the hardening cannot be set up (nothing ran), 127 when rsync cannot run.
    """
    try:
        confine(policy)
        harden()
    except (Refused, OSError) as exc:
        sys.stderr.write(f"{PROGRAM}: refused: {exc}\n")
        sys.stderr.flush()
        os._exit(1)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    try:
        os.execve(RSYNC, argv, env)  # noqa: S606 (no shell, on purpose)
    except OSError as exc:
        sys.stderr.write(f"{PROGRAM}: cannot run {RSYNC}: {exc}\n")
        sys.stderr.flush()
    os._exit(127)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    libc.capget.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
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
    # Nothing the transfer writes is honoured as setuid or as a device through its own mounts.
    for directory in writable:
        _mount(libc, None, directory, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | _kept_flags(directory))
    # rsync may open /dev/null for writing: that one device node stays writable.
    _mount(libc, "/dev/null", "/dev/null", MS_BIND)
    keep_writable = {*writable, "/dev/null"}
    for point in dict.fromkeys(_mount_points()):
        if point in keep_writable or not os.path.exists(point):
            continue
        if os.statvfs(point).f_flag & os.ST_RDONLY:
            continue
        _mount(libc, None, point, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(point))


def _kept_flags(point):
    flags = os.statvfs(point).f_flag
    return sum(mount_flag for st_flag, mount_flag in KEPT_FLAGS if flags & st_flag)


# --- the kernel's share: capabilities and a seccomp filter -------------------------------------

#: What rsync -o -g -p needs to write files owned by anyone (asterisk, root) with their modes:
#: CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER. Every other capability is dropped, among them
#: CAP_MKNOD (device files), CAP_SETFCAP (file capabilities), CAP_FSETID (keeping s-bits),
#: CAP_LINUX_IMMUTABLE, CAP_SYS_ADMIN (remounting what confine() made read-only), CAP_SETUID.
KEPT_CAPABILITIES = (0, 1, 3)
CAP_SETPCAP = 8
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 24, 38, 22, 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SPECIAL_BITS = 0o6000  # S_ISUID | S_ISGID
EPERM, ENOSYS = 1, 38

# System call numbers per machine: (mode checked at argument N, denied, not implemented).
# "mode" calls fail with EPERM when their mode has a setuid/setgid bit; "denied" ones always fail
# with EPERM; "absent" ones with ENOSYS (openat2 hides its mode in a struct; io_uring would run
# any of the others without a system call the filter sees). rsync uses none of them but chmod.
SYSCALLS = {
    "x86_64": {
        "arch": 0xC000003E,
        # chmod fchmod fchmodat fchmodat2 open creat openat → the argument holding the mode
        "mode": {90: 1, 91: 1, 268: 2, 452: 2, 2: 2, 85: 1, 257: 3},
        # mknod mknodat setxattr lsetxattr fsetxattr setxattrat
        "denied": (133, 259, 188, 189, 190, 463),
        "absent": (437, 425),  # openat2 io_uring_setup
    },
    "aarch64": {
        "arch": 0xC00000B7,
        "mode": {52: 1, 53: 2, 452: 2, 56: 3},  # fchmod fchmodat fchmodat2 openat
        "denied": (33, 5, 6, 7, 463),  # mknodat setxattr lsetxattr fsetxattr setxattrat
        "absent": (437, 425),
    },
}
X32_SYSCALL_BIT = 0x40000000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


def seccomp_program(table):
    """The filter as classic BPF instructions ``(code, jump if true, jump if false, k)``.

    Layout: arch check; then for each watched call a "nr == call?" test jumping to its own
    block; falling off the tests allows the call. Arguments are read as their low 32 bits
    (both machines are little-endian).
    """

    def ret(value):
        return [(BPF_RET_K, 0, 0, value)]

    deny, absent, allow = ret(SECCOMP_RET_ERRNO | EPERM), ret(SECCOMP_RET_ERRNO | ENOSYS), ret(SECCOMP_RET_ALLOW)
    blocks = []  # (syscall numbers, block of instructions)
    for number, argument in table["mode"].items():
        check = [(BPF_LD_W_ABS, 0, 0, 16 + 8 * argument), (BPF_JSET_K, 0, 1, SPECIAL_BITS), *deny, *allow]
        blocks.append(([number], check))
    blocks.append((list(table["denied"]), deny))
    blocks.append((list(table["absent"]), absent))
    tests_count = sum(len(numbers) for numbers, _ in blocks)
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 1, 0, table["arch"]),
        *deny,  # another ABI (i386 on x86_64): nothing at all
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        *deny,  # the x32 ABI
    ]
    # Blocks start after the tests and the "allow" that ends them.
    offset, index = 1, 0
    for numbers, block in blocks:
        for number in numbers:
            index += 1
            program.append((BPF_JEQ_K, tests_count - index + offset, 0, number))
        offset += len(block)
    program += allow
    for _, block in blocks:
        program += block
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _prctl(libc, what, *args):
    arguments = [ctypes.c_ulong(value) for value in (*args, 0, 0, 0, 0)[:4]]
    if libc.prctl(what, *arguments) != 0:
        raise Refused(f"cannot confine the transfer: prctl {what}: {os.strerror(ctypes.get_errno())}")


def drop_capabilities(libc):
    """Leave only KEPT_CAPABILITIES: in the bounding set (what rsync gets at exec), and in this process."""
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as last:
        last_cap = int(last.read())
    for capability in sorted(set(range(last_cap + 1)) - set(KEPT_CAPABILITIES), key=lambda c: c == CAP_SETPCAP):
        _prctl(libc, PR_CAPBSET_DROP, capability)
    _prctl(libc, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    # Of the kept ones, those this process holds (all of them as root; fewer when sshd or a wrapper runs it
    # with less): capset cannot add a capability, and asking for one it lacks would refuse the transfer.
    held = _permitted(libc)
    kept = sum(1 << capability for capability in KEPT_CAPABILITIES if held >> capability & 1)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(kept, kept, 0), _CapData(0, 0, 0))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise Refused(f"cannot confine the transfer: capset: {os.strerror(ctypes.get_errno())}")


def _permitted(libc):
    """This process's permitted capability set, as a bit mask."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise Refused(f"cannot confine the transfer: capget: {os.strerror(ctypes.get_errno())}")
    return data[0].permitted | data[1].permitted << 32


def install_seccomp(libc):
    table = SYSCALLS.get(os.uname().machine)
    if table is None:
        raise Refused(f"cannot confine the transfer: no seccomp filter for the machine {os.uname().machine!r}")
    program = seccomp_program(table)
    packed = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(packed, len(packed))
    fprog = _SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    _prctl(libc, PR_SET_NO_NEW_PRIVS, 1)
    _prctl(libc, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


def harden():
    """After confine(): drop capabilities, then the seccomp filter; both hold for rsync after exec."""
    libc = _libc()
    drop_capabilities(libc)
    install_seccomp(libc)


def missing_directories(policy):
    """The allowed directories that do not exist yet, with their missing parents under root: topmost first.

    confine() creates them (a bind mount needs its directory); those the master
    sent nothing into (a source it skipped as missing) are removed afterwards.
    """
    root = os.path.normpath(policy["root"])
    missing = []
    for directory in policy["allow"] + policy["allow_tree"]:
        path, chain = under_root(root, directory), []
        while path != root and path not in missing and not os.path.lexists(path):
            chain.append(path)
            path = os.path.dirname(path)
        missing.extend(reversed(chain))
    return missing


def remove_if_empty(directories):
    """Remove each directory that is still empty, deepest first (rmdir never removes content)."""
    for directory in sorted(directories, key=lambda path: path.count("/"), reverse=True):
        try:
            os.rmdir(directory)
        except OSError:
            pass  # not empty (the master sent files there), or already gone


def receive(policy, options):
    """In this (child) process: confine, harden, then become the receiving rsync; never returns."""
    become_rsync(policy, [RSYNC, "--server", *options, *FORCED_OPTIONS, ".", policy["root"]])


def main(argv):
    try:
        policy = parse_policy(argv)
        command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
        if command.split()[:3] == ["rsync", "--server", "--sender"]:
            options, sources = check_send_request(command, policy)
            sys.stderr.flush()
            send(policy, options, sources)
        options = check_request(command, policy["root"])
        created = missing_directories(policy)
    except Refused as exc:
        sys.stderr.write(f"{PROGRAM}: refused: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"{PROGRAM}: refused: {exc}\n")
        return 1
    # The transfer runs in a child, confined; this parent only waits, then tidies the directories
    # confine() had to create and nothing was sent into. It reads nothing from the connection.
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        receive(policy, options)
    _, status = os.waitpid(child, 0)
    remove_if_empty(created)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
