"""Running one external command for an edit step (reload PostgreSQL, systemctl...).

Argument lists only, never a shell; bounded by ``timeouts.command``; any
failure becomes an :class:`~wazo_ha_core.errors.EditStepError` naming the
setting the command came from, so the edit is undone with a message an
operator can act on.
"""

from __future__ import annotations

import shlex
import subprocess

from .errors import EditStepError


def run_step_command(argv: list[str], label: str, timeout: float) -> None:
    """Run ``argv``; raise EditStepError mentioning ``label`` when it is missing, hangs or fails."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise EditStepError(f"{label}: command not found: {argv[0]!r}") from None
    except subprocess.TimeoutExpired:
        raise EditStepError(f"{label}: {shlex.join(argv)} did not finish within {timeout:g} s") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise EditStepError(f"{label}: {shlex.join(argv)} exited with {result.returncode}: {detail[0]}")
