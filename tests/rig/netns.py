"""Moved to :mod:`wazo_ha_rig.netns` (installable, so ``wazo-ha demo`` uses the same code); re-exported here."""

from wazo_ha_rig.netns import *  # noqa: F403
