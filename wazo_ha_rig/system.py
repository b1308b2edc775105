"""The machine's side of the rig: root, the Debian packages it needs, installing the missing ones.

One list, ``apt-packages.txt`` beside this module, read by ``run-tests`` too.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

PACKAGE_LIST = Path(__file__).with_name("apt-packages.txt")


def apt_packages() -> list[str]:
    lines = PACKAGE_LIST.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def missing_packages(packages: list[str] | None = None) -> list[str]:
    missing = []
    for package in packages or apt_packages():
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def install(packages: list[str], say: Callable[[str], None] = print) -> None:
    """``apt-get install`` ``packages``, non-interactive; raises on failure with apt's last line."""
    if not packages:
        return
    say(f"installing {' '.join(packages)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}): {detail[0]}")
