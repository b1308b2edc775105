"""Run one rows copy-back in its own process, so a test can SIGKILL it anywhere: ``python copy_back_child.py JSON``.

The JSON holds the two endpoints (no secret: the slave's password is read from its 0600 file) and the chunk size.
"""

import json
import sys
from pathlib import Path

from wazo_ha_plugins.pg_dump.connection import Endpoint, connect
from wazo_ha_plugins.pg_dump.copy_back import copy_back_rows


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])

    def endpoint(side: dict) -> Endpoint:
        password_file = Path(side["password_file"]) if side["password_file"] else None
        return Endpoint(side["role"], side["host"], side["port"], side["user"], side["database"], password_file, None)

    master = connect(endpoint(spec["master"]), 5, 60)
    slave = connect(endpoint(spec["slave"]), 5, 60)
    report = copy_back_rows(master, slave, chunk_rows=spec["chunk_rows"])
    print(json.dumps(report.figures()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
