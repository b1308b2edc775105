"""Moved to :mod:`wazo_ha_rig.postgres` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.postgres import *  # noqa: F403
