"""Moved to :mod:`wazo_ha_rig.waiting` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.waiting import *  # noqa: F403
