"""One rsync run over ssh: its command line, its progress, its figures and its exit code in words."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wazo_ha_core import PeerUnreachable, PluginError

#: rsync exit codes (rsync(1), EXIT VALUES) → what an operator reads.
EXIT_MESSAGES = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files or directories",
    4: "requested action not supported",
    5: "error starting the client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in the rsync protocol data stream (the connection was lost or the slave refused)",
    13: "errors with program diagnostics",
    14: "error in IPC code",
    20: "rsync was interrupted by a signal",
    21: "some error returned by waitpid()",
    22: "error allocating memory buffers",
    23: "partial transfer due to errors: some files were not copied",
    24: "partial transfer: some source files vanished while being copied",
    25: "the --max-delete limit stopped deletions",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
    255: "ssh failed",
}
PARTIAL = (23, 24)

STATS = {
    "files_total": r"Number of files: ([0-9]+)",
    "files_transferred": r"Number of regular files transferred: ([0-9]+)",
    "files_created": r"Number of created files: ([0-9]+)",
    "files_deleted": r"Number of deleted files: ([0-9]+)",
    "bytes_transferred": r"Total transferred file size: ([0-9]+)",
    "bytes_sent": r"Total bytes sent: ([0-9]+)",
    "bytes_received": r"Total bytes received: ([0-9]+)",
}
PRESENTED_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
PROGRESS = re.compile(r"^\s*([0-9]+)\s+([0-9]+)%\s+(\S+)\s+(\S+)")


@dataclass
class TransferResult:
    exit_code: int
    figures: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def ssh_command(
    key_file: str, known_hosts: str, port: int, connect_timeout: float, bind_address: str | None = None
) -> list[str]:
    """The ssh client rsync runs: our key only, our pinned host key only, never a prompt."""
    command = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        key_file,
        "-p",
        str(port),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        f"ConnectTimeout={max(1, round(connect_timeout))}",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=3",
    ]
    if bind_address:
        command += ["-b", bind_address]
    return command


def rsync_command(
    ssh: list[str],
    sources: list[str],
    destination: str,
    *,
    io_timeout: int,
    bandwidth_limit: int | None,
    progress: bool,
    checksum: bool = False,
) -> list[str]:
    # Deletions found during the transfer and done after it, as --delete-after
    # promises, without --delete-after's second pass over the receiver's tree.
    # checksum: files compared by content (-c), not size and time (renumbered voicemail).
    command = _rsync_base(ssh, ["--delete-delay", *(["-c"] if checksum else [])], io_timeout, bandwidth_limit)
    if progress:
        command.append("--info=progress2")
    return [*command, "--", *sources, destination]


def pull_command(
    ssh: list[str],
    sources: list[str],
    destination: str,
    *,
    io_timeout: int,
    bandwidth_limit: int | None,
    mirror: bool = False,
) -> list[str]:
    """rsync from the slave into a local staging directory: owners by number, paths kept (-R).

    No deletion, unless ``mirror``: then files gone on the slave are removed from the staged copy (local
    only) and files are compared by content (``-c``): app_voicemail renumbers by renaming, so the same name
    may hold another message of the same size and second, which rsync's size-and-time check would skip.
    """
    extra = ["--numeric-ids", *(["--delete-delay", "-c"] if mirror else [])]
    command = _rsync_base(ssh, extra, io_timeout, bandwidth_limit)
    return [*command, "--", *sources, destination]


def _rsync_base(ssh: list[str], extra: list[str], io_timeout: int, bandwidth_limit: int | None) -> list[str]:
    """What every transfer with the slave's forced command passes: -rlptgoR (never -a: see receiver.py)."""
    command = ["rsync", "-rlptgoR", *extra, "--no-implied-dirs", "--stats", "--no-human-readable"]
    command += [f"--timeout={io_timeout}", "-e", " ".join(ssh)]
    if bandwidth_limit:
        command.append(f"--bwlimit={bandwidth_limit}")
    return command


def run_rsync(command: list[str], on_progress: Callable[[str, dict], None], env: dict[str, str]) -> TransferResult:
    """Run rsync; forward its progress lines; return its exit code, figures and error lines."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    output: list[str] = []
    assert process.stdout is not None and process.stderr is not None
    # stderr drained at the same time: thousands of warnings (vanished files…) would
    # otherwise fill its pipe and block rsync while we wait on stdout.
    stderr: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr.append(process.stderr.read()), name="rsync-stderr", daemon=True)
    drain.start()
    pending = b""
    while chunk := process.stdout.read1(65536):
        pending += chunk
        *complete, pending = re.split(rb"[\r\n]", pending)
        for raw in complete:
            _take_line(raw.decode(errors="replace"), output, on_progress)
    _take_line(pending.decode(errors="replace"), output, on_progress)
    code = process.wait()
    drain.join()
    errors = b"".join(stderr).decode(errors="replace").splitlines()
    return TransferResult(code, parse_stats("\n".join(output)), [line for line in errors if line.strip()])


def _take_line(line: str, output: list[str], on_progress: Callable[[str, dict], None]) -> None:
    match = PROGRESS.match(line)
    if match:
        done, percent, rate, eta = match.groups()
        on_progress(line.strip(), {"bytes": int(done), "percent": int(percent), "rate": rate, "eta": eta})
    elif line.strip():
        output.append(line)


def parse_stats(text: str) -> dict[str, int]:
    figures = {}
    for name, pattern in STATS.items():
        match = re.search(pattern, text.replace(",", ""))
        if match:
            figures[name] = int(match.group(1))
    return figures


def explain_failure(
    code: int, errors: list[str], peer: str, known_hosts: str, pinned: Sequence[str] = ()
) -> PluginError:
    """Turn a failed rsync (non-partial exit code) and its stderr into an error an operator can act on.

    ``pinned``: the fingerprints pinned for the slave, named when ssh refuses its host key.
    """
    text = "\n".join(errors)
    detail = "; ".join(errors[-3:])
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        # ssh's own warning names the key it was shown; the only SHA256 fingerprint on its stderr.
        presented = sorted(set(PRESENTED_FINGERPRINT.findall(text)) - set(pinned))
        return PluginError(
            f"host key of the slave {peer} does not match the key pinned in {known_hosts}: "
            f"pinned {', '.join(pinned) or 'none'}, presented {', '.join(presented) or 'unknown'}. Refusing to sync. "
            "If the slave was reinstalled, check its new key on the slave and pin it again "
            "(`ssh root@SLAVE wazo-ha sync host-key show | wazo-ha sync host-key pin --replace`); "
            "otherwise someone may be impersonating the slave."
        )
    if "wazo-ha-rsync-receiver: refused" in text:
        refusal = next(line for line in errors if "wazo-ha-rsync-receiver: refused" in line)
        return PluginError(f"the slave {peer} refused the transfer: {refusal.split('refused: ', 1)[1]}")
    if "Permission denied (publickey" in text:
        return PluginError(
            f"the slave {peer} refused the sync key (not installed, or this node's address is not the one "
            "it allows): run `wazo-ha sync init`"
        )
    unreachable = ("Connection refused", "Connection timed out", "No route to host", "Network is unreachable")
    # ssh could not connect at all: rsync then exits 12 ("connection unexpectedly closed, 0 bytes received"),
    # ssh alone 255. Either way nothing was sent: say the slave is unreachable, not that a transfer broke.
    cannot_connect = [line for line in errors if line.startswith(("ssh: connect to host", "ssh: Could not resolve"))]
    if cannot_connect or (code == 255 and any(marker in text for marker in unreachable)):
        return PeerUnreachable(f"cannot reach the slave {peer} over ssh: {'; '.join(cannot_connect) or detail}")
    lost = ("closed by remote host", "Broken pipe", "Connection reset", "connection unexpectedly closed")
    if code in (10, 12, 30, 255) and any(marker in text for marker in lost):
        return PluginError(
            f"the connection to the slave {peer} was lost during the transfer (rsync exit {code}): {detail}. "
            "Files already copied are complete; the next sync copies the rest."
        )
    meaning = EXIT_MESSAGES.get(code, "unknown error")
    return PluginError(f"rsync to the slave {peer} failed (exit {code}: {meaning}): {detail or 'no message'}")
