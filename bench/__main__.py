"""``python -m bench``: run every benchmark (``tox -e bench``)."""

import sys

from . import replication

sys.exit(replication.main())
