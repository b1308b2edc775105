"""Moved to :mod:`wazo_ha_rig.monit` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.monit import *  # noqa: F403
