"""Running a quick-start command as an operator at a terminal would: in a pty, answering the prompts."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from dataclasses import dataclass

from wazo_ha_rig.chroot_node import ChrootNode


@dataclass
class Outcome:
    returncode: int
    output: str  # stdout and stderr as the terminal showed them


def run_at_terminal(node: ChrootNode, text: str, answers: dict[str, str], timeout: float = 300) -> Outcome:
    """``text`` run by ``sh`` in ``/root`` of ``node`` under ``script`` (a pty, so ssh and getpass prompt).

    ``answers``: regular expression matched against the end of the output not yet answered → what
    the operator types (a newline is added). The command's exit status comes back (``script -e``).
    """
    argv = node.command(["script", "-q", "-e", "-f", "-c", f"cd /root && {text}", "/dev/null"])
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, pending = b"", ""
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"`{text}` did not finish within {timeout:g} s; output:\n{output.decode()}")
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
                pending += chunk.decode(errors="replace")
                for prompt, answer in answers.items():
                    if re.search(prompt + r"\s*$", pending):
                        process.stdin.write(answer.encode() + b"\n")
                        process.stdin.flush()
                        pending = ""
                        break
            elif process.poll() is not None:
                break
        returncode = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Outcome(returncode, output.decode(errors="replace").replace("\r\n", "\n"))
