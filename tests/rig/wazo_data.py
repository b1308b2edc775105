"""Moved to :mod:`wazo_ha_rig.wazo_data` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.wazo_data import *  # noqa: F403
