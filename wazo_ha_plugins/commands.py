"""Running a plugin's external commands: argument lists, a time limit, errors an operator can act on.

Shared by the service managers; never a shell, so nothing in a setting is
interpreted twice.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from wazo_ha_core import PluginError, PluginTimeout


def check_command(name: str, key: str, value) -> list[str]:
    """A setting that must be a non-empty list of strings (an argument list, not a shell line)."""
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise PluginError(
            f"plugin_config.{name}.{key} must be an argument list like ['monit', 'start', 'all'], got {value!r}"
        )
    return list(value)


def run_command(argv: Sequence[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    """Run ``argv``; raise PluginError naming ``what`` on a missing program or timeout. Non-zero exits are returned."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise PluginError(f"{what}: `{shlex.join(argv)}` failed: {argv[0]!r} not found") from None
    except PermissionError:
        raise PluginError(f"{what}: `{shlex.join(argv)}` failed: {argv[0]!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise PluginTimeout(f"{what}: `{shlex.join(argv)}` did not finish within {timeout:g} s") from None


def failure_detail(result: subprocess.CompletedProcess) -> str:
    """``exit 3: <last line of stderr or stdout>``."""
    output = (result.stderr or result.stdout or "").strip().splitlines()
    return f"exit {result.returncode}" + (f": {output[-1]}" if output else "")
