"""Where Wazo's real schema fixture lives (``asterisk-schema.sql``, ``asterisk-populate-data.sql``).

It is not shipped with the library: in CI and in a fresh clone it sits in
``../shared/fixtures`` beside the repository. Looked up in this order: an
explicit directory, ``$WAZO_HA_FIXTURES``, then ``shared/fixtures`` in the
current directory or any parent, then the same beside this package's source
tree (an editable install or a run from the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "WAZO_HA_FIXTURES"
SCHEMA, DATA = "asterisk-schema.sql", "asterisk-populate-data.sql"


class FixtureNotFound(RuntimeError):
    pass


def candidates(explicit: str | os.PathLike | None = None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]
    found: list[Path] = []
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for directory in (start, *start.parents):
            found.append(directory / "shared" / "fixtures")
    return list(dict.fromkeys(found))


def find(explicit: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(schema, data)`` paths, or :class:`FixtureNotFound` saying where it looked and how to point at it."""
    looked = candidates(explicit)
    for directory in looked:
        if (directory / SCHEMA).is_file() and (directory / DATA).is_file():
            return directory / SCHEMA, directory / DATA
    if explicit:
        where = "the directory given"
    elif os.environ.get(ENV_VAR):
        where = f"${ENV_VAR}"
    else:
        where = "shared/fixtures beside the current directory or the package"
    shown = ", ".join(str(path) for path in looked[:4]) + (" ..." if len(looked) > 4 else "")
    raise FixtureNotFound(
        f"Wazo schema fixture ({SCHEMA}, {DATA}) not found in {where} ({shown}): "
        f"pass --fixtures DIR or set {ENV_VAR}=DIR"
    )
