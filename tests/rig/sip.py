"""Moved to :mod:`wazo_ha_rig.sip` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.sip import *  # noqa: F403
